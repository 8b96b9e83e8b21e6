"""``sleep``: waits, cooperatively; the plugin that demonstrates pause and cancel."""

from __future__ import annotations

import time
from typing import Any

from taskworker import Task, TaskContext

#: The longest stretch without a checkpoint (DESIGN §7 asks for at least every 0.1 s).
CHECKPOINT_SECONDS = 0.1


class Sleep(Task):
    """Sleeps for the given seconds; pauses and cancels at checkpoints."""

    task_type = "sleep"
    params_schema = {
        "type": "object",
        "properties": {"seconds": {"type": "number", "minimum": 0}},
        "required": ["seconds"],
        "additionalProperties": False,
    }
    #: Waiting changes nothing: a saga counts it undone without asking its worker.
    undo = "nothing"

    def run(self, ctx: TaskContext) -> dict[str, Any]:
        total = float(ctx.params["seconds"])
        slept = 0.0
        while slept < total:
            ctx.checkpoint()
            step = min(CHECKPOINT_SECONDS, total - slept)
            started = time.monotonic()
            ctx.wait(step)
            slept += time.monotonic() - started
            ctx.progress(100.0 * min(slept, total) / total if total else 100.0, f"{slept:.1f}s")
        ctx.checkpoint()
        return {"slept": round(slept, 3)}
