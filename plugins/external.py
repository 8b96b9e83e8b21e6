"""``external``: asynchronous; ``run`` returns at once and a ``notify`` ends the task.

The shape of every plugin that hands work to a system outside the worker (a backup agent,
a cloud API): start it, return, and let that system report through ``notify`` with the
task's token. Until then the heartbeat or the deadline decides.
"""

from __future__ import annotations

from taskworker import Task, TaskContext


class External(Task):
    """Waits for an outside notify."""

    task_type = "external"
    blocking = False
    params_schema = {
        "type": "object",
        "properties": {"note": {"type": "string"}},
        "additionalProperties": False,
    }

    def run(self, ctx: TaskContext) -> None:
        ctx.log(f"waiting for notify: {ctx.params.get('note', '')}".rstrip(": "))
