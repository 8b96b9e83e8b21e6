"""``PUT /v1/task/{type}?task_id=ID&action=A``: every action of the contract, on the scheduler.

Most actions are triggers of the state table, which alone decides whether they are allowed
(409 with nothing changed otherwise). Actions on a task a worker holds must reach that
worker first: the move is decided, then the worker is told, then the move is written on the
condition that the task's version did not change meanwhile. A worker that cannot be reached
therefore leaves the task untouched, and no database transaction is held open across the
network call.

``change`` with new params is new work: for a privileged type (see
:func:`~taskscheduler.tasks.create.check_privilege`) only an admin may give them. A change
moves nothing, yet it is on record: a ``change`` record (from = to = the task's state) with
who changed what, in the transaction of the change.

``revert`` moves nothing either: it creates a new task that undoes a finished one
(:mod:`taskscheduler.tasks.revert`), and answers with that task.

``progress`` and ``heartbeat`` are not state changes; they do not bump the version, so a
stream of them never makes a concurrent transition fail.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, Row, update

from taskscheduler.db.models import utcnow
from taskscheduler.db.tables import TASKS
from taskscheduler.tasks.create import Announcer, Silent, check_privilege
from taskscheduler.tasks.guard import Applied
from taskscheduler.tasks.logs import write_log
from taskscheduler.tasks.read import TaskQueries, on_worker
from taskscheduler.tasks.revert import revert
from taskscheduler.tasks.settle import notify
from taskscheduler.tasks.transitions import Note, apply_trigger, decide_row, write_note
from taskscheduler.tasks.views import task_view
from taskscheduler.tasks.write import write_changes
from taskscheduler.workers.client import WorkerCommands
from taskscheduler.workers.registry import Registry
from taskworker.contract.api import (
    Action,
    ChangeBody,
    NotifyBody,
    ProcessArg,
    ProgressBody,
    TaskView,
)
from taskworker.contract.codec import convert, decode
from taskworker.errors import Conflict, InvalidInput, StaleAttempt
from taskworker.states import CHANGEABLE, State, Trigger

_c = TASKS.c

#: Actions that are plain triggers of the state table.
TRIGGERS: dict[Action, Trigger] = {
    Action.PREPARE: Trigger.PREPARE,
    Action.RUNNING: Trigger.RUN,
    Action.PAUSE: Trigger.PAUSE,
    Action.CONTINUE: Trigger.CONTINUE,
    Action.ROLLBACK: Trigger.ROLLBACK,
    Action.CLEAN: Trigger.FINISH,
    Action.CANCEL: Trigger.CANCEL,
    Action.RETRY: Trigger.RETRY,
}
#: Of those, the ones the worker holding the task must carry out.
TO_WORKER = frozenset({Action.PAUSE, Action.CONTINUE, Action.CANCEL, Action.ROLLBACK})
#: process_arg fields ``change`` may set (task_status is what pause/continue are for).
CHANGEABLE_ARGS = ("start_time", "deadline_second", "lock_timeout", "max_retry", "retry_backoff")


class TaskActions:
    def __init__(
        self,
        engine: Engine,
        queries: TaskQueries,
        registry: Registry,
        commands: WorkerCommands,
        *,
        announcer: Announcer | None = None,
    ) -> None:
        self._engine = engine
        self._queries = queries
        self._registry = registry
        self._commands = commands
        #: Tells the dispatch loops of a revert just stored, as a create does.
        self._announcer: Announcer = announcer or Silent()
        self._handlers: dict[Action, Callable[[Row[Any], bytes, str, str | None], None]] = {
            Action.PROGRESS: self._progress,
            Action.HEARTBEAT: self._heartbeat,
            Action.NOTIFY: self._notify,
        }

    def act(
        self,
        task_type: str,
        task_id: int,
        action: Action,
        body: bytes,
        *,
        actor: str,
        role: str | None,
        reason: str | None = None,
        attempt: int | None = None,
    ) -> TaskView:
        """Apply ``action`` and return the task as it is afterwards (for ``revert``, the new
        task that undoes it).

        ``role`` is the caller's (see :mod:`taskscheduler.tasks.create`); ``attempt``, sent
        by workers, fences reports from an attempt that was superseded.
        """
        row = self._queries.row(task_type, task_id)
        if attempt is not None and attempt != row.attempt:
            raise StaleAttempt(task_id, attempt, row.attempt)
        handler = self._handlers.get(action)
        if action is Action.REVERT:
            made = revert(self._engine, self._registry, row, actor=actor, role=role, reason=reason)
            self._announcer.notify([made])
            return task_view(made)
        if action is Action.CHANGE:
            self._change(row, body, actor, reason, role=role)
        elif handler is None:
            self._trigger(row, action, actor, reason)
        else:
            handler(row, body, actor, reason)
        return task_view(self._queries.row(task_type, task_id))

    def _trigger(self, row: Row[Any], action: Action, actor: str, reason: str | None) -> None:
        act_on(self._engine, self._commands, row, action, actor=actor, reason=reason)

    def _change(
        self, row: Row[Any], body: bytes, actor: str, reason: str | None, *, role: str | None
    ) -> None:
        if row.state not in CHANGEABLE or on_worker(row):
            allowed = ", ".join(sorted(CHANGEABLE))
            raise Conflict(
                f"task {row.id} is in state {row.state}; change is allowed only while it is "
                f"not running ({allowed})"
            )
        wanted = decode(body or b"{}", ChangeBody, root="")
        values: dict[str, Any] = {}
        if wanted.params is not None:
            spec = self._registry.type_spec(row.task_type)
            check_privilege(row.task_type, spec, role)
            self._registry.validate_params(row.task_type, spec, wanted.params)
            values["params"] = wanted.params
        if wanted.process_arg is not None:
            values.update(_process_arg_changes(row, wanted.process_arg))
        if not values:
            raise InvalidInput("body", "names nothing to change (params or process_arg)")
        now = utcnow()
        what = _what_changed(row, values)
        with self._engine.begin() as conn:
            write_changes(conn, row.id, values, version=row.version, now=now)
            note = f"changed {', '.join(sorted(values))} ({actor})"
            write_log(conn, row.id, row.attempt, f"{note}: {reason}" if reason else note, at=now)
            write_note(
                conn,
                row.id,
                Note.CHANGE,
                state=row.state,
                actor=actor,
                reason=f"{what}: {reason}" if reason else what,
                attempt=row.attempt,
                when=now,
            )

    def _progress(self, row: Row[Any], body: bytes, actor: str, reason: str | None) -> None:
        report = decode(body or b"{}", ProgressBody, root="")
        with self._engine.begin() as conn:
            record_progress(conn, row.id, report)

    def _heartbeat(self, row: Row[Any], body: bytes, actor: str, reason: str | None) -> None:
        decode(body or b"{}", dict[str, Any], root="")
        with self._engine.begin() as conn:
            touch(conn, row.id, Action.HEARTBEAT)

    def _notify(self, row: Row[Any], body: bytes, actor: str, reason: str | None) -> None:
        report = decode(body or b"{}", NotifyBody, root="")
        with self._engine.begin() as conn:
            notify(conn, row.id, report, actor=actor, reason=reason)


def act_on(
    engine: Engine,
    commands: WorkerCommands,
    row: Row[Any],
    action: Action,
    *,
    actor: str,
    reason: str | None,
    changes: dict[str, Any] | None = None,
) -> Applied:
    """Apply the trigger of ``action`` to the task ``row`` shows, telling its worker first
    when it holds the task; the write is conditional on ``row``'s version (see the module
    docstring). Operators' actions and control tasks' passes over children both use it."""
    trigger = TRIGGERS[action]
    decide_row(row, trigger, task_id=row.id)
    if action in TO_WORKER and on_worker(row):
        commands.command(task_view(row), action, reason)
    if trigger is Trigger.RETRY:
        changes = {**(changes or {}), "ready_at": utcnow()}
    with engine.begin() as conn:
        return apply_trigger(
            conn,
            row.id,
            trigger,
            actor=actor,
            reason=reason,
            expect_version=row.version,
            changes=changes,
        )


def touch(conn: Connection, task_id: int, action: Action, **values: Any) -> None:
    """Record a sign of life in ``conn``'s transaction; refused once the task has finished."""
    written = conn.execute(
        update(TASKS)
        .where(_c.id == task_id, _c.state != State.FINISH.value)
        .values(heartbeat_at=utcnow(), **values)
    )
    if written.rowcount != 1:
        raise Conflict(f"task {task_id} has finished; {action} is no longer accepted")


def record_progress(conn: Connection, task_id: int, report: ProgressBody) -> None:
    touch(
        conn,
        task_id,
        Action.PROGRESS,
        progress_percent=report.percent,
        progress_message=report.message,
    )


def _what_changed(row: Row[Any], values: dict[str, Any]) -> str:
    """What a change does, for its record: each process_arg column from its old value to its
    new one; params only by name (they may hold what a record should not show)."""
    parts = []
    for name in sorted(values):
        if name == "params":
            parts.append("params replaced")
        elif name != "ready_at":  # follows start_time
            parts.append(f"{name} {_shown(getattr(row, name))} -> {_shown(values[name])}")
    return "changed " + ", ".join(parts)


def _shown(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else repr(value)


def _process_arg_changes(row: Row[Any], given: dict[str, Any]) -> dict[str, Any]:
    """Validate the changed process_arg fields on top of the stored ones."""
    for name in given:
        if name not in CHANGEABLE_ARGS:
            raise InvalidInput(
                f"process_arg.{name}",
                f"cannot be changed; change takes {', '.join(CHANGEABLE_ARGS)}",
            )
    stored = {name: getattr(row, name) for name in CHANGEABLE_ARGS}
    merged = convert({**stored, **given}, ProcessArg, root="process_arg")
    values = {name: getattr(merged, name) for name in given}
    if merged.retry_backoff is not None and "retry_backoff" in given:  # a JSON column
        values["retry_backoff"] = msgspec.to_builtins(merged.retry_backoff)
    if "start_time" in given:
        values["ready_at"] = merged.start_time or utcnow()
    return values
