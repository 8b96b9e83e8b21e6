"""The Dispatcher (DESIGN §1): moves tasks that are ready from the database into the Redis
queue. With the database queue there is nothing to move and this loop does not run.

Each pass reads the head of the line from the database (``init``, ``ready_at`` reached,
``important_level DESC, id``: the same order the database queue hands out) and pushes what
Redis does not hold yet. "Not yet" is the queue's ``task:version`` markers
(:mod:`taskscheduler.queue.redis`), so the pass is incremental — a waiting task is pushed
once, a task back in ``init`` after a requeue, retry or continue is pushed again under its
new version — and it is also the full rebuild: when Redis lost its data (the epoch key is
gone with everything else) no marker is left, so every ready task is pushed again.

Only the head of the line (:data:`SCAN`) is looked at per pass: what lies beyond it is not
needed before the head has been taken, and a task of a higher level jumps into the head
as soon as it is ready. Several nodes may run a Dispatcher at once: the markers are added in
the same script that adds the entries, so two passes that read the same rows push once.

A crash between reading the rows and pushing loses nothing: the rows are still there and
the next pass (on any node) pushes them.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Engine, bindparam, select

from taskscheduler.control.kinds import CONTROL_KINDS
from taskscheduler.db.engine import reading
from taskscheduler.db.tables import TASKS
from taskscheduler.queue.base import Ready
from taskscheduler.queue.redis import RedisQueue
from taskworker.states import State

log = logging.getLogger(__name__)
#: Tasks of the head of the line compared with the queue per pass.
SCAN = 500


_c = TASKS.c
#: The head of the line (built once: the loop runs it several times a second).
_HEAD = (
    select(_c.id, _c.version, _c.important_level)
    .where(_c.state == State.INIT, _c.ready_at <= bindparam("now"), _c.kind.not_in(CONTROL_KINDS))
    .order_by(_c.important_level.desc(), _c.id)
    .limit(SCAN)
)


class DispatcherLoop:
    name = "dispatcher"
    batch = 1  # any work done: look again at once

    def __init__(self, engine: Engine, queue: RedisQueue) -> None:
        self.engine = engine
        self.queue = queue

    def tick(self, now: datetime) -> int:
        with reading(self.engine) as conn:
            head = conn.execute(_HEAD, {"now": now}).all()
        if not head:
            return 0  # a flushed Redis is noticed with the first task it must hold again
        fresh, pushed = self.queue.push([Ready(*row) for row in head], now)
        if fresh:
            log.warning(
                "the Redis queue had no state (first start, or Redis lost its data): "
                "rebuilt from the database, %d task(s) pushed",
                pushed,
            )
        return pushed
