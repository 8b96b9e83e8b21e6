"""The Checker: tasks whose attempt went quiet, ran past its deadline, or was postponed.

- ``running`` whose heartbeat is older than the timeout: if its worker still holds the
  attempt in ``prepare`` (the node that recorded ``run`` died before telling the worker),
  the run is started now; otherwise (the worker died, or lost its step) the attempt
  failed; :func:`taskscheduler.tasks.settle.settle` retries it, after the task's backoff,
  while retries remain, else finishes it failed. Asynchronous tasks are exempt: their
  outside system owes a ``notify``, not heartbeats, and the deadline bounds them.
- ``running`` past ``started_at + deadline_second``: cancelled on its worker (best effort),
  then failed without retry and finished ``timed_out``. The comparison is made in seconds,
  with the stored deadline clamped to the longest the API accepts (366 days): no stored
  value, however large or odd, can raise here and stop the sweep for every other task.
- ``create``/``prepare`` unchanged for longer than the timeout (the node that started it
  died between its commit and the worker's answer): the worker is asked what it knows of
  the attempt; one it holds is cancelled there. The task is postponed and requeued, not
  failed: its ``run`` never began, so starting it again spends none of its retries (a task
  with ``max_retry`` 0 must still run once when the node that started it dies). The
  attempt's fence makes anything the old attempt might still report a 409.
- ``postpose`` whose wait is over (or that a release woke): requeued, but not before its
  ``start_time`` (a task created with a future one waits in ``postpose`` until then).

One node sweeps at a time, holding the ``sweep:checker`` lease through the node's lock
backend (:class:`taskscheduler.locks.Ownership`: renewed every pass, taken over by another
node once it expires after ``lease_seconds``), so a slow worker is not asked twice for one
task. The lease only avoids duplicate work: the rows are read after it is taken, and
should two sweeps still overlap (a pass that outlasted the lease), every move is
version-checked, so a task another node already handled is skipped, never moved twice.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, func, literal, or_, select, text
from sqlalchemy.exc import InterfaceError, OperationalError

from taskscheduler.control.kinds import CONTROL_KINDS
from taskscheduler.db.engine import reading
from taskscheduler.db.models import UTCDateTime
from taskscheduler.db.tables import TASKS
from taskscheduler.locks import DatabaseLocks, Locks, Ownership
from taskscheduler.tasks.settle import retryable, settle
from taskscheduler.tasks.transitions import transition
from taskscheduler.tasks.write import write_task
from taskscheduler.workers.client import WorkerClient
from taskscheduler.workers.registry import Registry
from taskworker.contract.fields import MAX_SECONDS
from taskworker.errors import ConcurrentUpdate, NotFound, TaskError, TransitionRefused
from taskworker.states import Outcome, State, Trigger

log = logging.getLogger(__name__)
BATCH = 200
SWEEP_LEASE = "sweep:checker"


class CheckerLoop:
    name = "checker"
    batch = 1  # any work done: look again at once

    def __init__(
        self,
        engine: Engine,
        client: WorkerClient,
        registry: Registry,
        *,
        node: str,
        heartbeat_timeout: float,
        lease_seconds: float = 10.0,
        locks: Locks | None = None,
    ) -> None:
        self.engine = engine
        self.client = client
        self.registry = registry
        self.node = node
        self.actor = f"checker:{node}"
        self.timeout = timedelta(seconds=heartbeat_timeout)
        self.sweep = Ownership(locks or DatabaseLocks(engine), SWEEP_LEASE, node, lease_seconds)

    def tick(self, now: datetime) -> int:
        if not self.sweep.hold():
            return 0  # another node sweeps
        c = TASKS.c
        columns = (
            c.id,
            c.task_type,
            c.heartbeat_at,
            c.started_at,
            c.deadline_second,
            c.worker,
            c.attempt,
            c.version,
        )
        with reading(self.engine) as conn:
            # Only the silent ones (index on state, heartbeat_at) and those past their
            # deadline, as the database computes it: a sweep must not stop at the first
            # BATCH of many running tasks, nor miss a short deadline behind long ones.
            quiet = conn.execute(
                select(*columns)
                .where(
                    c.state == State.RUNNING,
                    c.kind.not_in(CONTROL_KINDS),
                    or_(c.heartbeat_at.is_(None), c.heartbeat_at < now - self.timeout),
                )
                .limit(BATCH)
            ).all()
            timed = conn.execute(
                select(*columns)
                .where(
                    c.state == State.RUNNING,
                    c.deadline_second > 0,
                    c.kind.not_in(CONTROL_KINDS),
                    _past_deadline(conn.dialect.name, now),
                )
                .limit(BATCH)
            ).all()
            running = list({row.id: row for row in [*quiet, *timed]}.values())
            stuck = conn.execute(
                select(c.id, c.task_type, c.state, c.worker, c.attempt, c.version)
                .where(
                    c.state.in_([State.CREATE, State.PREPARE]), c.updated_at < now - self.timeout
                )
                .limit(BATCH)
            ).all()
            # a task waiting for its start_time stays until then, even when a freed lock
            # or type slot woke it (set its ready_at to now) early
            waiting = conn.execute(
                select(c.id, c.version)
                .where(
                    c.state == State.POSTPOSE,
                    c.ready_at <= now,
                    or_(c.start_time.is_(None), c.start_time <= now),
                )
                .limit(BATCH)
            ).all()
        done = sum(self._guarded(self._check_running, row, now) for row in running)
        done += sum(self._guarded(self._reconcile, row, now) for row in stuck)
        for row in waiting:
            with contextlib.suppress(ConcurrentUpdate, TransitionRefused):
                transition(
                    self.engine,
                    row.id,
                    Trigger.REQUEUE,
                    actor=self.actor,
                    expect_version=row.version,
                    reason="wait over",
                    now=now,
                )
                done += 1
        return done

    def _guarded(self, check: Callable[[Any, datetime], int], row: Any, now: datetime) -> int:
        """One task's check; what it raises is logged and the sweep goes on with the others
        (but for the database being down, which ends the pass: the runner backs off)."""
        try:
            return check(row, now)
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            log.exception("task %s: its check failed; the sweep goes on", row.id)
            return 0

    def _check_running(self, row: Any, now: datetime) -> int:
        if deadline_passed(row.started_at, row.deadline_second, now):
            with contextlib.suppress(TaskError):
                self.client.act(row.worker, row.task_type, row.id, "cancel", row.attempt)
            return self._fail(
                row.id,
                {"message": f"deadline of {row.deadline_second} s passed"},
                "deadline passed",
                now,
                retryable=False,  # a deadline bounds the task, not one attempt
                failure_outcome=Outcome.TIMED_OUT,
            )
        quiet = row.heartbeat_at is None or now - row.heartbeat_at > self.timeout
        if quiet and self._expects_heartbeats(row.task_type):
            if self._resume_interrupted(row, now):
                return 1
            lost = {"message": "heartbeat lost"}
            return self._fail(row.id, lost, "heartbeat lost", now, retryable=retryable(lost))
        return 0

    def _resume_interrupted(self, row: Any, now: datetime) -> bool:
        """A ``running`` task its worker still holds in ``prepare``: the node that recorded
        ``run`` died before telling the worker. The run never began, so it is started now,
        the step the dead node left undone, instead of being failed for silence."""
        try:
            held = self.client.status(row.worker, row.task_type, row.id, row.attempt)
            if held.get("task_status") != State.PREPARE:
                return False
            self.client.act(row.worker, row.task_type, row.id, "running", row.attempt)
        except TaskError:
            return False
        with self.engine.begin() as conn:
            write_task(conn, [row.id], {"heartbeat_at": now}, version=row.version)
        log.warning("task %s: run started on %s after its node died", row.id, row.worker)
        return True

    def _reconcile(self, row: Any, now: datetime) -> int:
        """An attempt stuck before ``running``: whatever the worker holds of it is cancelled
        there, and the task goes back in line (see the module docstring)."""
        try:
            held = self.client.status(row.worker, row.task_type, row.id, row.attempt)
        except TaskError as exc:  # 404: the worker never got it; or it is gone
            seen = f"the worker does not have it ({exc})"
        else:
            seen = f"the worker holds it in {held.get('task_status')}"
            with contextlib.suppress(TaskError):
                self.client.act(row.worker, row.task_type, row.id, "cancel", row.attempt)
        reason = f"stuck in {row.state}, never ran: {seen}"
        try:
            transition(
                self.engine,
                row.id,
                Trigger.POSTPONE,
                actor=self.actor,
                expect_version=row.version,
                reason=reason,
                changes={"ready_at": now},
                now=now,
            )
        except (ConcurrentUpdate, TransitionRefused):
            return 0
        log.warning("task %s: %s", row.id, reason)
        return 1

    def _expects_heartbeats(self, task_type: str) -> bool:
        try:
            return self.registry.type_spec(task_type).blocking
        except NotFound:
            return True

    def _fail(
        self,
        task_id: int,
        error: Any,
        reason: str,
        now: datetime,
        *,
        retryable: bool,
        failure_outcome: Outcome = Outcome.FAILED,
    ) -> int:
        """Settle the attempt as failed (retried after its wait, when ``retryable`` and
        retries are left: :mod:`taskscheduler.tasks.settle`)."""
        try:
            with self.engine.begin() as conn:
                settle(
                    conn,
                    task_id,
                    success=False,
                    actor=self.actor,
                    error=error,
                    retryable=retryable,
                    failure_outcome=failure_outcome,
                    reason=reason,
                    now=now,
                )
        except (ConcurrentUpdate, TransitionRefused):
            return 0
        log.warning("task %s: %s", task_id, reason)
        return 1


def _past_deadline(dialect: str, now: datetime) -> ColumnElement[bool]:
    """SQL for :func:`deadline_passed`: the seconds since ``started_at``, past the stored
    deadline clamped to :data:`MAX_SECONDS` (SQLite's ``julianday``, MySQL's
    ``TIMESTAMPDIFF``; both compare numbers, so no stored value can overflow them)."""
    c = TASKS.c
    at = literal(now, UTCDateTime())
    limit: ColumnElement[Any]
    if dialect == "sqlite":
        elapsed = (func.julianday(at) - func.julianday(c.started_at)) * 86400.0
        limit = func.min(c.deadline_second, MAX_SECONDS)
    else:
        elapsed = func.timestampdiff(text("MICROSECOND"), c.started_at, at) / 1e6
        limit = func.least(c.deadline_second, MAX_SECONDS)
    return elapsed > limit


def deadline_passed(
    started_at: datetime | None, deadline_second: float | None, now: datetime
) -> bool:
    """Whether a task started at ``started_at`` has run past ``deadline_second``.

    Seconds are compared as floats, never turned into a ``timedelta`` (which overflows past
    about 10^14 s); a stored deadline beyond :data:`MAX_SECONDS` (or not a number) counts as
    that longest one. None or 0: no deadline."""
    if not deadline_second or started_at is None:
        return False
    limit = float(deadline_second)
    if not limit <= MAX_SECONDS:  # also NaN
        limit = MAX_SECONDS
    return (now - started_at).total_seconds() > limit
