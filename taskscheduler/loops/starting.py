"""Starting claimed tasks on their workers: the steps after ``create`` was committed.

The Scheduler loop (:mod:`taskscheduler.loops.scheduler`) claims tasks by committing their
``create``; a :class:`Starter` then carries each group of tasks through their worker: one
request per step for the whole group (``POST /v1/batch``, typed by
:class:`~taskworker.contract.worker.CallBatch`) and one commit per step between them —
``create`` on the worker, the resource locks and ``prepare``, the plugins' checks, ``run``.
A worker that is full or unreachable means the next live worker serving the type, at once
and in the same attempt; a refusal means ``postpone`` (or the failure of a started run).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from taskscheduler.db.engine import reading
from taskscheduler.db.models import utcnow
from taskscheduler.db.tables import RECORDS, TASKS
from taskscheduler.tasks.bulk import Planned, apply_many
from taskscheduler.tasks.guard import Applied, Seen
from taskscheduler.tasks.logs import write_log
from taskscheduler.tasks.resources import ResourceBusy, take_resources
from taskscheduler.tasks.revert import reverted
from taskscheduler.tasks.settle import retryable, settle
from taskscheduler.tasks.start_copy import ToStart
from taskscheduler.tasks.tokens import notify_token
from taskscheduler.tasks.transitions import Note, apply_trigger, transition, write_note
from taskscheduler.tasks.write import write_changes
from taskscheduler.workers.client import WorkerClient
from taskworker.contract.api import Action, CreateInfo, ProcessArg
from taskworker.contract.worker import ActCall, CreateCall, Dispatch, WorkerCreateBody
from taskworker.errors import ConcurrentUpdate, TaskError, TransitionRefused, Unavailable
from taskworker.states import State, Trigger

log = logging.getLogger(__name__)
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

    row: ToStart
    candidates: list[str]
    url: str
    created: Applied
    locks: str | None = None
    #: ``prepare`` was committed with ``create`` (no resources to lock).
    prepared: bool = False


class Starter:
    """Carries claimed tasks through their workers (see the module docstring)."""

    def __init__(
        self, engine: Engine, client: WorkerClient, *, secret: str | None, actor: str
    ) -> None:
        self.engine = engine
        self.client = client
        self.secret = secret
        self.actor = actor

    def start_on(self, url: str, group: list[Start], now: datetime) -> None:
        """Create, prepare and start a group of tasks on one worker: one request per step
        for the whole group (``/v1/batch``) and one commit per step between them; a task
        prepared with its ``create`` has its ``prepare`` call in the first request."""
        calls: list[CreateCall | ActCall] = []
        for s in group:
            calls.append(
                CreateCall(task_type=s.row.task_type, body=self._body(s.row, s.created.attempt))
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
        busy: list[tuple[Start, ResourceBusy, list[str]]] = []
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
                        tokens = take_resources(conn, start.row.id, resources, utcnow())
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
                except ResourceBusy as held:
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
        (:func:`~taskscheduler.tasks.effects.after_move`)."""
        with contextlib.suppress(TaskError):
            self.client.act(
                start.url, start.row.task_type, start.row.id, "cancel", start.created.attempt
            )
        reason = why or f"the plugin names resources to lock: {', '.join(resources)}"
        self.postpone(
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
        self, row: ToStart, candidates: Sequence[str], created: Applied
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
        pause or cancel meanwhile wins, raising :class:`ConcurrentUpdate`) with a
        ``reassign`` record naming both workers, and the same line in the task's log. A crash
        right after it leaves a ``create`` on the new worker's name that the Checker
        reconciles like any other."""
        now = utcnow()
        message = f"worker {old} unavailable ({why}): attempt moved to {new}"
        with self.engine.begin() as conn:
            version = write_changes(
                conn, task_id, {"worker": new}, version=created.version, now=now
            )
            write_note(
                conn,
                task_id,
                Note.REASSIGN,
                state=created.move.to_state,
                actor=self.actor,
                reason=message,
                attempt=created.attempt,
                when=now,
            )
            write_log(conn, task_id, created.attempt, message, at=now, level="warning")
        log.info(
            "task %s attempt %s moved from %s to %s: %s", task_id, created.attempt, old, new, why
        )
        return dataclasses.replace(created, version=version)

    def _after_refusal(self, row: ToStart, attempt: int, exc: TaskError, now: datetime) -> None:
        """The worker was full, unreachable or said no: postpone, or fail a started run."""
        with self.engine.connect() as conn:
            state = conn.execute(select(TASKS.c.state).where(TASKS.c.id == row.id)).scalar()
        if state == State.RUNNING:
            self._settle_failure(row.id, {"message": str(exc)}, f"worker refused run: {exc}")
        elif state in (State.CREATE, State.PREPARE):
            log.info("task %s attempt %s postponed: %s", row.id, attempt, exc)
            self.postpone(row.id, None, now, f"worker: {exc}")

    def postpone(
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
        """A failed ``prepare`` or a refused ``run``: settled as any failure, retried (after
        its wait) unless ``error`` says it cannot be (``TaskFailed(retryable=False)``)."""
        with self.engine.begin() as conn:
            settle(
                conn,
                task_id,
                success=False,
                actor=self.actor,
                error=error,
                retryable=retryable(error),
                reason=reason,
            )

    def _body(self, row: ToStart, attempt: int) -> WorkerCreateBody:
        """What the worker is sent to create the task: its own columns and its identity."""
        return WorkerCreateBody(
            create_info=CreateInfo(
                task_name=row.task_name,
                important_level=row.important_level,
                resources=row.resources or None,
            ),
            process_arg=ProcessArg(
                deadline_second=row.deadline_second,
                max_retry=row.max_retry,
                lock_timeout=row.lock_timeout,
            ),
            params=row.params or {},
            dispatch=Dispatch(
                task_id=row.id,
                attempt=attempt,
                notify_token=notify_token(self.secret, row.id),
                target=row.target,
                reverts=reverted(self.engine, row.reverts_task_id),
            ),
        )


def _act(start: Start, action: Action) -> ActCall:
    return ActCall(
        task_type=start.row.task_type,
        task_id=start.row.id,
        attempt=start.created.attempt,
        action=action,
    )


def _locks(tokens: dict[str, int]) -> str | None:
    """The locks taken, with their fencing tokens, for the ``run`` record's reason."""
    if not tokens:
        return None
    return "locks " + ", ".join(f"{name}#{token}" for name, token in tokens.items())
