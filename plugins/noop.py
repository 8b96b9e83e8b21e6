"""``noop``: does nothing and succeeds; for tests and benchmarks of the machinery itself."""

from __future__ import annotations

from typing import Any

from taskworker import Task, TaskContext


class Noop(Task):
    """Does nothing and succeeds at once."""

    task_type = "noop"
    params_schema = {"type": "object", "additionalProperties": False}
    #: It changes nothing: a saga counts it undone without asking its worker.
    undo = "nothing"

    def run(self, ctx: TaskContext) -> dict[str, Any]:
        return {}
