"""The Scheduler loop: tasks in ``init`` whose time has come go to a live worker.

For each ready task, highest ``important_level`` first and FIFO within a level:

1. pick a live worker serving the type (fresh heartbeat, most slots free, see
   :mod:`taskscheduler.workers.capacity`), or the pinned ``http_url``; none → ``postpone``
   with a growing ``ready_at`` (the Checker requeues it);
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

import contextlib
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from taskscheduler.control.kinds import CONTROL_KINDS
from taskscheduler.db.engine import reading
from taskscheduler.db.models import utcnow
from taskscheduler.locks.leases import LEASES
from taskscheduler.queue import Queue, QueueItem
from taskscheduler.queue.base import in_line
from taskscheduler.queue.database import DatabaseQueue
from taskscheduler.tasks import effects as finish
from taskscheduler.tasks.read import LOGS
from taskscheduler.tasks.settle import settle
from taskscheduler.tasks.start_copy import READ_TO_START, from_copy
from taskscheduler.tasks.tokens import notify_token
from taskscheduler.tasks.transitions import (
    RECORDS,
    TASKS,
    Applied,
    Planned,
    Seen,
    apply_many,
    apply_trigger,
    transition,
)
from taskscheduler.workers.capacity import Capacity
from taskscheduler.workers.client import WorkerClient
from taskworker.contract.api import Action
from taskworker.errors import ConcurrentUpdate, TaskError, TransitionRefused, Unavailable
from taskworker.states import State, Trigger

log = logging.getLogger(__name__)
#: Tasks taken per pass.
BATCH = 100
#: First wait before a postponed task is tried again; doubles per retry, up to the maximum.
POSTPONE_SECONDS = 1.0
MAX_POSTPONE_SECONDS = 60.0
#: A task waiting for a lock or a type slot is woken when it frees; this is only the
#: fallback look, should a wake-up be missed.
WAKE_FALLBACK_SECONDS = 60.0


@dataclasses.dataclass(frozen=True, slots=True)
class Start:
    """A task being started: as read, the workers that may take it, the one on record, and
    its attempt as last written (with the locks taken, once prepared)."""

    row: Any
    candidates: list[str]
    url: str
    created: Applied
    locks: str | None = None
    #: ``prepare`` was committed with ``create`` (no resources to lock).
    prepared: bool = False


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
        self.client = client
        self.secret = secret
        self.actor = f"scheduler:{node}"
        self.worker_timeout = timedelta(seconds=worker_timeout)
        self.limits = dict(type_limits or {})
        finish.wake_on_end(self.limits)
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
            ready: dict[int, tuple[Any, list[str]]] = {}
            for item in items:
                row = rows.get(item.task_id)
                if row is None or row.id in ready or not in_line(row, now):
                    continue  # a duplicate, or a stale item: the task moved on
                if row.http_url:
                    ready[row.id] = (row, [row.http_url])
                    continue
                candidates = self.capacity.place(conn, row.task_type, now)
                if candidates is None:
                    waits.append((row, f"no live worker serves {row.task_type}", None))
                elif candidates:  # else every worker of the type is full: a later pass
                    ready[row.id] = (row, candidates)
            started = self._create_all(conn, list(ready.values()), now, waits)
        for row, why, wait in waits:
            self._postpone(row.id, row.version, now, why, wait=wait)
        by_worker: dict[str, list[Start]] = {}
        for start in started:
            by_worker.setdefault(start.url, []).append(start)
        try:
            for url, group in by_worker.items():
                self._start_on(url, group, now)
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

    def _start_on(self, url: str, group: list[Start], now: datetime) -> None:
        """Create, prepare and start a group of tasks on one worker: one request per step
        for the whole group (``/v1/batch``) and one commit per step between them; a task
        prepared with its ``create`` has its ``prepare`` call in the first request."""
        calls = []
        for s in group:
            calls.append(
                {
                    "call": "create",
                    "task_type": s.row.task_type,
                    "body": self._body(s.row, s.created.attempt),
                }
            )
            if s.prepared:
                calls.append(_act(s, Action.PREPARE))
        answers = iter(self.client.batch(url, calls))
        accepted, checks = [], []
        for start in group:
            answer = next(answers)
            check = next(answers) if start.prepared else None
            if isinstance(answer, Unavailable) and len(start.candidates) > 1:
                self._start_alone(start, answer, now)  # the next worker, for this one task
            elif isinstance(answer, TaskError):
                self._after_refusal(start.row, start.created.attempt, answer, now)
            elif check is not None and not answer.get("resources"):
                checks.append((start, check))
            else:
                accepted.append((start, answer))
        self._prepare_and_run(url, accepted, now, checks)

    def _prepare_and_run(
        self,
        url: str,
        accepted: list[tuple[Start, dict[str, Any]]],
        now: datetime,
        checks: Sequence[tuple[Start, dict[str, Any] | TaskError]] = (),
    ) -> None:
        """The steps after the worker accepted the tasks: locks and ``prepare``, the plugins'
        checks, ``run``; one commit and one request per step for the whole group. ``checks``
        are the answers to ``prepare`` calls already made."""
        prepared = self._prepare_all(accepted, now)
        answers = self.client.batch(url, [_act(s, Action.PREPARE) for s in prepared])
        checked = []
        for start, answer in [*checks, *zip(prepared, answers, strict=True)]:
            if isinstance(answer, TaskError):
                self._after_refusal(start.row, start.created.attempt, answer, now)
            elif answer.get("task_status") == State.FAIL:
                self._settle_failure(start.row.id, answer.get("error"), "prepare failed")
            else:
                checked.append(start)
        running = self._run_all(checked)
        answers = self.client.batch(url, [_act(s, Action.RUNNING) for s in running])
        for start, answer in zip(running, answers, strict=True):
            if isinstance(answer, TaskError):
                self._after_refusal(start.row, start.created.attempt, answer, now)

    def _prepare_all(
        self, accepted: list[tuple[Start, dict[str, Any]]], now: datetime
    ) -> list[Start]:
        """Take each task's resource locks and record ``prepare``, in one transaction: for
        each task both or neither (a savepoint undoes the locks of a task that found one
        held), so the state is validated again with the locks held."""
        if not accepted:
            return []
        prepared: list[Start] = []
        busy: list[tuple[Start, finish.ResourceBusy, list[str]]] = []
        named: list[tuple[Start, list[str]]] = []
        plain: list[Start] = []
        with self.engine.begin() as conn:
            for start, answer in accepted:
                resources = sorted({*(start.row.resources or ()), *(answer.get("resources") or ())})
                if start.prepared:  # committed with create, as the plugin named no resources
                    if resources:  # it does now (replaced since it registered): next attempt
                        named.append((start, resources))
                    else:
                        prepared.append(start)
                    continue
                if not resources:
                    plain.append(start)
                    continue
                try:
                    with conn.begin_nested():
                        tokens = finish.take_resources(conn, start.row.id, resources, utcnow())
                        applied = apply_trigger(
                            conn,
                            start.row.id,
                            Trigger.PREPARE,
                            actor=self.actor,
                            expect_version=start.created.version,
                            # every name locked is stored: the task's end releases them
                            changes={"resources": resources},
                            seen=Seen.after(start.row, start.created),
                        )
                except finish.ResourceBusy as held:
                    busy.append((start, held, resources))
                except (ConcurrentUpdate, TransitionRefused):
                    pass  # an operator paused or cancelled it while it was being started
                else:
                    prepared.append(
                        dataclasses.replace(start, created=applied, locks=_locks(tokens))
                    )
            prepared += self._apply_to(conn, Trigger.PREPARE, plain)
        for start, exc, resources in busy:
            self._withdraw(start, resources, now, why=str(exc), wait=WAKE_FALLBACK_SECONDS)
        for start, resources in named:
            self._withdraw(start, resources, now)
        return prepared

    def _withdraw(
        self,
        start: Start,
        resources: list[str],
        now: datetime,
        *,
        why: str | None = None,
        wait: float | None = None,
    ) -> None:
        """Cancel the attempt on its worker and postpone the task with ``resources`` stored:
        the next attempt locks them, and the release of any of them wakes the task
        (:func:`finish.after_move`)."""
        with contextlib.suppress(TaskError):
            self.client.act(
                start.url, start.row.task_type, start.row.id, "cancel", start.created.attempt
            )
        reason = why or f"the plugin names resources to lock: {', '.join(resources)}"
        self._postpone(
            start.row.id, start.created.version, now, reason, wait=wait, resources=resources
        )

    def _run_all(self, checked: list[Start]) -> list[Start]:
        """Record ``run`` for every task whose prepare passed, in one transaction."""
        if not checked:
            return []
        with self.engine.begin() as conn:
            return self._apply_to(conn, Trigger.RUN, checked)

    def _apply_to(self, conn: Connection, trigger: Trigger, starts: list[Start]) -> list[Start]:
        """Move every task of ``starts`` by ``trigger`` (see :func:`apply_many`); the ones an
        operator paused or cancelled meanwhile are left out."""
        plans = [
            # a task that took no locks is as its last move left it (with locks, the move
            # stored its resources: read again)
            Planned(
                s.row.id,
                s.created.version,
                reason=s.locks,
                seen=Seen.after(s.row, s.created) if s.locks is None else None,
            )
            for s in starts
        ]
        moved = apply_many(conn, trigger, plans, actor=self.actor)
        return [
            dataclasses.replace(start, created=applied)
            for start in starts
            if isinstance(applied := moved.get(start.row.id), Applied)
        ]

    def _start_alone(self, start: Start, refusal: Unavailable, now: datetime) -> None:
        """The worker on record was full or down for this task: hand it to the next live
        worker serving the type, and start it there."""
        row = start.row
        try:
            moved = self._move_attempt(
                row.id, start.created, start.url, start.candidates[1], refusal
            )
            accepted, url, created = self._hand_to_worker(row, start.candidates[1:], moved)
        except (ConcurrentUpdate, TransitionRefused):
            return  # an operator paused or cancelled it while it was being started
        except TaskError as exc:
            self._after_refusal(row, start.created.attempt, exc, now)
            return
        self._prepare_and_run(
            url, [(dataclasses.replace(start, url=url, created=created), accepted)], now
        )

    def _hand_to_worker(
        self, row: Any, candidates: Sequence[str], created: Applied
    ) -> tuple[dict[str, Any], str, Applied]:
        """``create`` on the chosen worker; one that is full or down means the next live
        worker serving the type, in the same attempt. Returns the worker's answer, its URL
        and the attempt as last written. A worker that timed out may yet have accepted the
        attempt: it holds it without running it, since ``prepare`` and ``run`` go only to
        the worker on record, and the attempt fence refuses whatever it reports."""
        for index, url in enumerate(candidates):
            try:
                return (
                    self.client.create(url, row.task_type, self._body(row, created.attempt)),
                    url,
                    created,
                )
            except Unavailable as exc:
                if index + 1 == len(candidates):
                    raise
                created = self._move_attempt(row.id, created, url, candidates[index + 1], exc)
        raise AssertionError("no candidate worker")  # candidates is never empty

    def _move_attempt(
        self, task_id: int, created: Applied, old: str, new: str, why: Unavailable
    ) -> Applied:
        """Point the attempt at another worker: a version-checked write (an operator's
        pause or cancel meanwhile wins, raising :class:`ConcurrentUpdate`) with a line in
        the task's log saying why. A crash right after it leaves a ``create`` on the new
        worker's name that the Checker reconciles like any other."""
        now = utcnow()
        with self.engine.begin() as conn:
            written = conn.execute(
                update(TASKS)
                .where(TASKS.c.id == task_id, TASKS.c.version == created.version)
                .values(worker=new, version=created.version + 1, updated_at=now)
            )
            if written.rowcount != 1:
                raise ConcurrentUpdate(task_id)
            conn.execute(
                insert(LOGS).values(
                    task_id=task_id,
                    attempt=created.attempt,
                    level="warning",
                    message=f"worker {old} unavailable ({why}): attempt moved to {new}",
                    at=now,
                )
            )
        log.info(
            "task %s attempt %s moved from %s to %s: %s", task_id, created.attempt, old, new, why
        )
        return dataclasses.replace(created, version=created.version + 1)

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
                    c.state.in_(finish.WORKING),
                    c.kind.not_in(CONTROL_KINDS),
                )
            ).scalar_one()
        )

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
        *,
        wait: float | None = None,
        resources: list[str] | None = None,
    ) -> None:
        """Postpone for ``wait`` seconds, or by default with a wait that doubles with every
        earlier postponement of the task, so a task waiting out a long outage adds a record
        a minute, not one a second."""
        if wait is None:
            r = RECORDS.c
            with reading(self.engine) as conn:
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
                changes={
                    "ready_at": now + timedelta(seconds=wait),
                    **({"resources": resources} if resources else {}),
                },
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
                "target": row.target,
            },
        }


def _rows_to_start(conn: Connection, items: Sequence[QueueItem]) -> dict[int, Any]:
    """Each item's task as starting it reads it: the copy queued with it (see
    :mod:`taskscheduler.tasks.start_copy`), else read, in one query for all of those."""
    rows = {item.task_id: from_copy(item.start) for item in items if item.start is not None}
    unread = sorted({item.task_id for item in items} - rows.keys())
    if unread:
        rows.update((row.id, row) for row in conn.execute(READ_TO_START, {"ids": unread}))
    return rows


def _act(start: Start, action: Action) -> dict[str, Any]:
    return {
        "call": "act",
        "task_type": start.row.task_type,
        "task_id": start.row.id,
        "attempt": start.created.attempt,
        "action": action,
    }


def _locks(tokens: dict[str, int]) -> str | None:
    """The locks taken, with their fencing tokens, for the ``run`` record's reason."""
    if not tokens:
        return None
    return "locks " + ", ".join(f"{name}#{token}" for name, token in tokens.items())
