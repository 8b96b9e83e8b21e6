"""``fail``: always fails; its rollback succeeds. Demonstrates retries and rollbacks."""

from __future__ import annotations

from taskworker import Task, TaskContext, TaskFailed


class Fail(Task):
    """Always fails with the given message."""

    task_type = "fail"
    params_schema = {
        "type": "object",
        "properties": {"message": {"type": "string"}},
        "additionalProperties": False,
    }

    def run(self, ctx: TaskContext) -> None:
        raise TaskFailed(ctx.params.get("message", "failed on purpose"))

    def rollback(self, ctx: TaskContext) -> None:
        ctx.log("rollback of a task that changed nothing")
