"""Which live workers may take a task now, and how many more each may take.

The Scheduler loop needs this for every batch it starts, and reading it (the workers table,
and the tasks started on each worker) costs two queries: on an idle node that is a good part
of a task's start. So the figures are read at most once per :data:`FRESH_SECONDS` and kept in
between with each slot this node hands out counted off. Kept figures only ever undercount
free slots (a task that ended meanwhile is not seen), so they never send a worker more than
fresh ones would; what other nodes started meanwhile the worker itself refuses (503, and the
task goes to the next worker). And before a task is made to wait, or postponed because no
live worker serves its type, the figures are read again, so keeping them never delays a
task that fresh figures would have started: a new worker is seen by the first task it could
take.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from taskscheduler.db.models import WorkerNode
from taskscheduler.db.tables import TASKS
from taskworker.states import WORKING, State

WORKERS = WorkerNode.__table__
#: How long figures read from the database are used before they are read again.
FRESH_SECONDS = 1.0


class Capacity:
    def __init__(self, worker_timeout: timedelta) -> None:
        self._worker_timeout = worker_timeout
        self._read_at = float("-inf")
        self._checked = False
        self.workers: Sequence[Any] = []
        self._free: dict[str, int] = {}

    def begin(self, conn: Connection, now: datetime) -> None:
        """Start a pass: read the figures again when they are older than FRESH_SECONDS."""
        self._checked = False
        if time.monotonic() - self._read_at >= FRESH_SECONDS:
            self._read(conn, now)

    def place(self, conn: Connection, task_type: str, now: datetime) -> list[str] | None:
        """The live workers serving ``task_type`` that have a free slot, most free first,
        with a slot of the first counted off; ``[]`` when all are full, None when no live
        worker serves the type (after reading the figures again, once per pass)."""
        while True:
            serving = [w.url for w in self.workers if task_type in (w.task_types or {})]
            found = sorted(
                (url for url in serving if self._free[url] > 0),
                key=self._free.__getitem__,
                reverse=True,
            )
            if found or self._checked:
                break
            self._read(conn, now)
        if found:
            self._free[found[0]] -= 1
            return found
        return [] if serving else None

    def lockless(self) -> set[tuple[str, str]]:
        """``(worker URL, task type)`` of the types whose plugin on that worker names no
        resources (a worker too old to say is taken to name some)."""
        return {
            (w.url, name)
            for w in self.workers
            for name, spec in (w.task_types or {}).items()
            if spec.get("declares_resources") is False
        }

    def _read(self, conn: Connection, now: datetime) -> None:
        self.workers = conn.execute(
            select(WORKERS.c.url, WORKERS.c.task_types, WORKERS.c.running, WORKERS.c.capacity)
            .where(
                WORKERS.c.status == "active",
                WORKERS.c.heartbeat_at >= now - self._worker_timeout,
            )
            .order_by(WORKERS.c.running)
        ).all()
        self._free = _free_slots(conn, self.workers)
        self._read_at = time.monotonic()
        self._checked = True


def _free_slots(conn: Connection, workers: Sequence[Any]) -> dict[str, int]:
    """Slots each worker has free: its capacity less the tasks the database has started on
    it (a worker's own count arrives only with its heartbeat, too late for short tasks).
    A running task of an asynchronous type waits for its ``notify`` without a slot."""
    c = TASKS.c
    detached = {
        (w.url, name)
        for w in workers
        for name, spec in (w.task_types or {}).items()
        if not spec.get("blocking", True)
    }
    free = {w.url: w.capacity for w in workers}
    started = conn.execute(
        select(c.worker, c.task_type, c.state, func.count())
        .where(c.state.in_(WORKING), c.worker.in_(list(free)))
        .group_by(c.worker, c.task_type, c.state)
    )
    for url, task_type, state, count in started:
        if not (state == State.RUNNING and (url, task_type) in detached):
            free[url] -= count
    return free
