"""The Scheduler loop: tasks in ``init`` whose time has come go to a live worker.

For each ready task, highest ``important_level`` first and FIFO within a level:

1. pick a live worker serving the type (fresh heartbeat, most slots free, see
   :mod:`taskscheduler.workers.capacity`), or the pinned ``http_url``; none → ``postpone``
   with a growing ``ready_at`` (the Checker requeues it). A pinned URL is called only while
   it is a registered worker's (:mod:`taskscheduler.tasks.addresses`): the create checked
   it, but a worker may have gone since; then the task has no worker, and is postponed,
   never sent elsewhere;
2. a type with a concurrency limit (``TASK_TYPE_LIMITS``) already at its limit →
   ``postpone`` until one of its tasks ends (:mod:`taskscheduler.tasks.effects` wakes it);
3. ``create`` — a new attempt — is committed *before* the worker is called, with a
   version-checked UPDATE: of several nodes that saw the task, one wins, and a crash after
   the commit leaves a recorded attempt the Checker reconciles, never a run nobody knows of;
4. the worker accepts it and names the plugin's resources; the resource locks and the
   ``prepare`` move are committed together (a held lock → ``postpone`` until its release,
   the attempt cancelled on the worker), so the state is validated again with the locks
   held; then the worker's ``prepare`` runs the plugin's checks, ``run`` is recorded and
   the worker starts ``run``. A worker that is full or unreachable (503, no connection)
   means the next live worker serving the type, at once and in the same attempt (the move
   recorded in the task's log); when none is left, ``postpone`` and a later try.

   A task with no resources of its own whose worker says the plugin names none
   (``declares_resources``) has no lock to take: its ``prepare`` is committed with
   ``create``, and the worker gets both calls in one request, so the plugin's checks still
   run after ``prepare`` is durable, with one commit and one request less.

Candidates come from the queue (:mod:`taskscheduler.queue`: the tasks table, or Redis fed
by the Dispatcher), which only says which task to try: the row is read again (or, for a
task the API queued as it stored it, taken from the copy queued with it, see
:mod:`taskscheduler.tasks.start_copy`) and the version-checked ``create`` is the claim. An item
is acknowledged once that ``create`` committed, or once its task proved not dispatchable
(moved on, taken by another node, postponed); a crash before then leaves the item to come
back after the redelivery timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select

from taskscheduler.control.kinds import CONTROL_KINDS
from taskscheduler.db.tables import LEASES, TASKS
from taskscheduler.loops.starting import WAKE_FALLBACK_SECONDS, Start, Starter
from taskscheduler.queue import Queue, QueueItem
from taskscheduler.queue.base import in_line
from taskscheduler.queue.database import DatabaseQueue
from taskscheduler.tasks.addresses import registered_workers
from taskscheduler.tasks.bulk import Planned, apply_many
from taskscheduler.tasks.effects import wake_on_end
from taskscheduler.tasks.guard import Applied
from taskscheduler.tasks.start_copy import READ_TO_START, from_copy
from taskscheduler.workers.capacity import Capacity
from taskscheduler.workers.client import WorkerClient
from taskworker.states import WORKING, State, Trigger

log = logging.getLogger(__name__)
#: Tasks taken per pass.
BATCH = 100


class SchedulerLoop:
    name = "scheduler"
    batch = BATCH

    def __init__(
        self,
        engine: Engine,
        client: WorkerClient,
        *,
        secret: str | None,
        node: str,
        worker_timeout: float,
        type_limits: Mapping[str, int] | None = None,
        queue: Queue | None = None,
    ) -> None:
        self.engine = engine
        self.actor = f"scheduler:{node}"
        self.starter = Starter(engine, client, secret=secret, actor=self.actor)
        self.worker_timeout = timedelta(seconds=worker_timeout)
        self.limits = dict(type_limits or {})
        wake_on_end(engine, self.limits)
        self.queue: Queue = queue or DatabaseQueue(engine)
        self.capacity = Capacity(self.worker_timeout)

    def tick(self, now: datetime) -> int:
        """Start what the queue hands out; return how many items it handed out (fewer than
        :data:`BATCH`: the line is empty for now)."""
        items = self.queue.take(BATCH, now)
        if not items:
            return 0
        waits: list[tuple[Any, str, float | None]] = []
        # one transaction reads the tasks and records their new attempts
        with self.engine.begin() as conn:
            rows = _rows_to_start(conn, items)
            self.capacity.begin(conn, now)
            workers = registered_workers(conn, {r.http_url for r in rows.values() if r.http_url})
            ready: dict[int, tuple[Any, list[str]]] = {}
            for item in items:
                row = rows.get(item.task_id)
                if row is None or row.id in ready or not in_line(row, now):
                    continue  # a duplicate, or a stale item: the task moved on
                if row.http_url:
                    if row.http_url in workers:
                        ready[row.id] = (row, [row.http_url])
                    else:
                        why = f"http_url {row.http_url} is no registered worker's URL"
                        waits.append((row, why, None))
                    continue
                candidates = self.capacity.place(conn, row.task_type, now)
                if candidates is None:
                    waits.append((row, f"no live worker serves {row.task_type}", None))
                elif candidates:  # else every worker of the type is full: a later pass
                    ready[row.id] = (row, candidates)
            started = self._create_all(conn, list(ready.values()), now, waits)
        for row, why, wait in waits:
            self.starter.postpone(row.id, row.version, now, why, wait=wait)
        by_worker: dict[str, list[Start]] = {}
        for start in started:
            by_worker.setdefault(start.url, []).append(start)
        try:
            for url, group in by_worker.items():
                self.starter.start_on(url, group, now)
        finally:
            # every item has been dealt with (its task left init, or waits in init for a
            # slot); acknowledged once the workers were called, off the path of the start
            self.queue.ack(items)
        return len(items)

    def _create_all(
        self,
        conn: Connection,
        ready: list[tuple[Any, list[str]]],
        now: datetime,
        waits: list[tuple[Any, str, float | None]],
    ) -> list[Start]:
        """Record a new attempt for each task in ``conn``'s transaction (one commit for the
        batch), and ``prepare`` too for the tasks with nothing to lock (the workers and
        types whose plugin names no resources).

        Under a type limit the started tasks of the type are counted in the same
        transaction, serialised per type by a row lock so two nodes cannot both take the
        last slot; a task over the limit goes to ``waits``. A task another node took, or an
        operator paused or cancelled meanwhile, is skipped: its version-checked write
        changed nothing."""
        if not ready:
            return []
        lockless = self.capacity.lockless()
        planned: list[Planned] = []
        room: dict[str, int] = {}
        for row, candidates in ready:
            limit = self.limits.get(row.task_type)
            if limit is not None:
                if row.task_type not in room:
                    room[row.task_type] = limit - self._started(conn, row.task_type)
                if room[row.task_type] <= 0:
                    why = f"{row.task_type} has {limit} tasks started, its limit"
                    waits.append((row, why, WAKE_FALLBACK_SECONDS))
                    continue
                room[row.task_type] -= 1
            url = candidates[0]
            # nothing to lock: prepare in the same write (see the module docstring)
            early = not row.resources and (url, row.task_type) in lockless
            then = (Trigger.PREPARE,) if early else ()
            changes = {"worker": url}
            plan = Planned(row.id, row.version, changes, f"to {url}", then=then, seen=row)
            planned.append(plan)
        created = apply_many(conn, Trigger.CREATE, planned, actor=self.actor, now=now)
        # a task another node took, or that was paused or cancelled meanwhile, is left alone
        return [
            Start(
                row,
                candidates,
                candidates[0],
                applied,
                prepared=applied.move.to_state == State.PREPARE,
            )
            for row, candidates in ready
            if isinstance(applied := created.get(row.id), Applied)
        ]

    def _started(self, conn: Connection, task_type: str) -> int:
        name = f"limit:{task_type}"
        ignore = "OR IGNORE" if conn.dialect.name == "sqlite" else "IGNORE"
        conn.execute(insert(LEASES).prefix_with(ignore).values(name=name, token=0))
        conn.execute(select(LEASES.c.name).where(LEASES.c.name == name).with_for_update())
        c = TASKS.c
        return int(
            conn.execute(
                select(func.count()).where(
                    c.task_type == task_type,
                    c.state.in_(WORKING),
                    c.kind.not_in(CONTROL_KINDS),
                )
            ).scalar_one()
        )


def _rows_to_start(conn: Connection, items: Sequence[QueueItem]) -> dict[int, Any]:
    """Each item's task as starting it reads it: the copy queued with it (see
    :mod:`taskscheduler.tasks.start_copy`), else read, in one query for all of those."""
    rows = {item.task_id: from_copy(item.start) for item in items if item.start is not None}
    unread = sorted({item.task_id for item in items} - rows.keys())
    if unread:
        rows.update((row.id, row) for row in conn.execute(READ_TO_START, {"ids": unread}))
    return rows
