"""The embedded queue: the tasks table itself.

``take`` is the select the Scheduler always made: tasks in ``init`` whose ``ready_at`` has
come, ``important_level DESC, id`` (served by the index on ``(state, ready_at)``). Nothing
is removed on take and nothing needs acknowledging: a task leaves the line when its
``create`` moves it out of ``init``. So this queue is not exclusive: two nodes may be handed
the same task, and the version-checked ``create`` lets exactly one of them start it. A node
that dies holding items loses nothing either, since the rows never left the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, select

from taskscheduler.control.kinds import CONTROL_KINDS
from taskscheduler.db.engine import reading
from taskscheduler.db.tables import TASKS
from taskscheduler.queue.base import QueueItem
from taskworker.states import State


class DatabaseQueue:
    exclusive = False

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def take(self, n: int, now: datetime) -> list[QueueItem]:
        c = TASKS.c
        with reading(self.engine) as conn:
            ids = conn.execute(
                select(c.id)
                .where(c.state == State.INIT, c.ready_at <= now, c.kind.not_in(CONTROL_KINDS))
                .order_by(c.important_level.desc(), c.id)
                .limit(n)
            ).scalars()
            return [QueueItem(task_id) for task_id in ids]

    def ack(self, items: Sequence[QueueItem]) -> None:
        """Nothing to do: the task's state is its place in the line."""
