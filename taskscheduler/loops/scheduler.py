"""The Scheduler loop: tasks in ``init`` whose time has come go to a live worker.

For each ready task, highest ``important_level`` first and FIFO within a level:

1. pick a live worker serving the type (fresh heartbeat, fewest running), or the pinned
   ``http_url``; none → ``postpone`` with a growing ``ready_at`` (the Checker requeues it);
2. a type with a concurrency limit (``TASK_TYPE_LIMITS``) already at its limit →
   ``postpone`` until one of its tasks ends (:mod:`taskscheduler.finish` wakes it);
3. ``create`` — a new attempt — is committed *before* the worker is called, with a
   version-checked UPDATE: of several nodes that saw the task, one wins, and a crash after
   the commit leaves a recorded attempt the Checker reconciles, never a run nobody knows of;
4. the worker accepts it and names the plugin's resources; the resource locks and the
   ``prepare`` move are committed together (a held lock → ``postpone`` until its release,
   the attempt cancelled on the worker), so the state is validated again with the locks
   held; then the worker's ``prepare`` runs the plugin's checks, ``run`` is recorded and
   the worker starts ``run``. A worker that is full or unreachable means ``postpone`` and a
   later try.

The database is the queue here: candidates are read with an index on (state, ready_at),
and the version check is the claim.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select

from taskscheduler import finish
from taskscheduler.db.models import WorkerNode, utcnow
from taskscheduler.leases import LEASES
from taskscheduler.lifecycle import RECORDS, TASKS, Applied, apply_trigger, transition
from taskscheduler.settle import settle
from taskscheduler.tokens import notify_token
from taskscheduler.worker_client import WorkerClient
from taskworker.errors import ConcurrentUpdate, TaskError, TransitionRefused
from taskworker.states import State, Trigger

log = logging.getLogger(__name__)
WORKERS = WorkerNode.__table__
#: Tasks taken per pass.
BATCH = 50
#: First wait before a postponed task is tried again; doubles per retry, up to the maximum.
POSTPONE_SECONDS = 1.0
MAX_POSTPONE_SECONDS = 60.0
#: A task waiting for a lock or a type slot is woken when it frees; this is only the
#: fallback look, should a wake-up be missed.
WAKE_FALLBACK_SECONDS = 60.0


class AtLimit(Exception):
    """The task's type has as many tasks started as its limit allows."""


class SchedulerLoop:
    name = "scheduler"

    def __init__(
        self,
        engine: Engine,
        client: WorkerClient,
        *,
        secret: str | None,
        node: str,
        worker_timeout: float,
        type_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.engine = engine
        self.client = client
        self.secret = secret
        self.actor = f"scheduler:{node}"
        self.worker_timeout = timedelta(seconds=worker_timeout)
        self.limits = dict(type_limits or {})

    def tick(self, now: datetime) -> int:
        c = TASKS.c
        with self.engine.connect().execution_options(readonly=True) as conn:
            ready = conn.execute(
                select(TASKS)
                .where(c.state == State.INIT, c.ready_at <= now)
                .order_by(c.important_level.desc(), c.id)
                .limit(BATCH)
            ).all()
            workers = conn.execute(
                select(WORKERS.c.url, WORKERS.c.task_types, WORKERS.c.running)
                .where(
                    WORKERS.c.status == "active",
                    WORKERS.c.heartbeat_at >= now - self.worker_timeout,
                )
                .order_by(WORKERS.c.running)
            ).all()
        for row in ready:
            self._start(row, workers, now)
        return len(ready)

    def _start(self, row: Any, workers: Sequence[Any], now: datetime) -> None:
        url = row.http_url or next(
            (w.url for w in workers if row.task_type in (w.task_types or {})), None
        )
        if url is None:
            self._postpone(row.id, row.version, now, f"no live worker serves {row.task_type}")
            return
        try:
            created = self._create(row, url, now)
        except AtLimit as exc:
            self._postpone(row.id, row.version, now, str(exc), wait=WAKE_FALLBACK_SECONDS)
            return
        except (ConcurrentUpdate, TransitionRefused):
            return  # another node took it, or it was paused or cancelled meanwhile
        try:
            accepted = self.client.create(url, row.task_type, self._body(row, created.attempt))
            resources = {*(row.resources or ()), *(accepted.get("resources") or ())}
            tokens = self._prepare(row.id, created, sorted(resources))
            view = self.client.act(url, row.task_type, row.id, "prepare", created.attempt)
            if view.get("task_status") == State.FAIL:
                self._settle_failure(row.id, view.get("error"), "prepare failed")
                return
            transition(self.engine, row.id, Trigger.RUN, actor=self.actor, reason=tokens)
            self.client.act(url, row.task_type, row.id, "running", created.attempt)
        except finish.ResourceBusy as busy:
            with contextlib.suppress(TaskError):
                self.client.act(url, row.task_type, row.id, "cancel", created.attempt)
            self._postpone(row.id, created.version, now, str(busy), wait=WAKE_FALLBACK_SECONDS)
        except (ConcurrentUpdate, TransitionRefused):
            return  # an operator paused or cancelled it while it was being started
        except TaskError as exc:
            self._after_refusal(row, created.attempt, exc, now)

    def _create(self, row: Any, url: str, now: datetime) -> Applied:
        """Record the new attempt; under a type limit, count the started tasks of the type in
        the same transaction, serialised per type by a row lock so two nodes cannot both
        take the last slot."""
        with self.engine.begin() as conn:
            limit = self.limits.get(row.task_type)
            if limit is not None and self._started(conn, row.task_type) >= limit:
                raise AtLimit(f"{row.task_type} has {limit} tasks started, its limit")
            return apply_trigger(
                conn,
                row.id,
                Trigger.CREATE,
                actor=self.actor,
                expect_version=row.version,
                changes={"worker": url},
                reason=f"to {url}",
                now=now,
            )

    def _started(self, conn: Connection, task_type: str) -> int:
        name = f"limit:{task_type}"
        ignore = "OR IGNORE" if conn.dialect.name == "sqlite" else "IGNORE"
        conn.execute(insert(LEASES).prefix_with(ignore).values(name=name, token=0))
        conn.execute(select(LEASES.c.name).where(LEASES.c.name == name).with_for_update())
        c = TASKS.c
        return int(
            conn.execute(
                select(func.count()).where(c.task_type == task_type, c.state.in_(finish.WORKING))
            ).scalar_one()
        )

    def _prepare(self, task_id: int, created: Applied, resources: list[str]) -> str | None:
        """Take the locks and record ``prepare`` in one transaction: both or neither."""
        with self.engine.begin() as conn:
            tokens = finish.take_resources(conn, task_id, resources, utcnow())
            apply_trigger(
                conn, task_id, Trigger.PREPARE, actor=self.actor, expect_version=created.version
            )
        if not tokens:
            return None
        return "locks " + ", ".join(f"{name}#{token}" for name, token in tokens.items())

    def _after_refusal(self, row: Any, attempt: int, exc: TaskError, now: datetime) -> None:
        """The worker was full, unreachable or said no: postpone, or fail a started run."""
        with self.engine.connect() as conn:
            state = conn.execute(select(TASKS.c.state).where(TASKS.c.id == row.id)).scalar()
        if state == State.RUNNING:
            self._settle_failure(row.id, {"message": str(exc)}, f"worker refused run: {exc}")
        elif state in (State.CREATE, State.PREPARE):
            log.info("task %s attempt %s postponed: %s", row.id, attempt, exc)
            self._postpone(row.id, None, now, f"worker: {exc}")

    def _postpone(
        self,
        task_id: int,
        version: int | None,
        now: datetime,
        reason: str,
        wait: float | None = None,
    ) -> None:
        """Postpone for ``wait`` seconds, or by default with a wait that doubles with every
        earlier postponement of the task, so a task waiting out a long outage adds a record
        a minute, not one a second."""
        if wait is None:
            r = RECORDS.c
            with self.engine.connect().execution_options(readonly=True) as conn:
                earlier = conn.execute(
                    select(func.count()).where(r.task_id == task_id, r.trigger == Trigger.POSTPONE)
                ).scalar_one()
            wait = min(MAX_POSTPONE_SECONDS, POSTPONE_SECONDS * 2**earlier)
        with contextlib.suppress(ConcurrentUpdate, TransitionRefused):
            transition(
                self.engine,
                task_id,
                Trigger.POSTPONE,
                actor=self.actor,
                reason=reason,
                expect_version=version,
                now=now,
                changes={"ready_at": now + timedelta(seconds=wait)},
            )

    def _settle_failure(self, task_id: int, error: Any, reason: str) -> None:
        with self.engine.begin() as conn:
            settle(conn, task_id, success=False, actor=self.actor, error=error, reason=reason)

    def _body(self, row: Any, attempt: int) -> dict[str, Any]:
        return {
            "create_info": {
                "task_name": row.task_name,
                "important_level": row.important_level,
                "resources": row.resources or None,
            },
            "process_arg": {
                "deadline_second": row.deadline_second,
                "max_retry": row.max_retry,
                "lock_timeout": row.lock_timeout,
            },
            "params": row.params or {},
            "dispatch": {
                "task_id": row.id,
                "attempt": attempt,
                "notify_token": notify_token(self.secret, row.id),
            },
        }
