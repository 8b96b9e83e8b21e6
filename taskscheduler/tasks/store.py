"""Inserting tasks: a create body becomes a row in ``init`` with its ``submit`` record.

Every way a task comes to exist — a single create, a batch, a topology's nodes, a fan-out's
targets, a trigger's instances — stores it with the columns of :func:`columns`, so one
create body means the same task whichever way it came. Inserting in ``init`` directly saves
the round trip of a separate ``none`` row; the move is still decided by the machine, so the
record replays like any other.

A task whose ``start_time`` is still to come is not in line yet: it is inserted in
``postpose``, its ``submit`` and ``postpone`` records (the latter naming when it starts)
written with it, in the same statements, so what it shows says why it waits. The Checker
requeues it once its time has come (:mod:`taskscheduler.loops.checker`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import Connection, Executable, Row, insert, select

from taskscheduler.db.models import utcnow
from taskscheduler.db.tables import TASKS
from taskscheduler.tasks.guard import INSERT_RECORD, INSERT_TASK_ID, INSERT_TASK_ROW
from taskscheduler.tasks.transitions import make_record
from taskworker.contract.api import CreateBody
from taskworker.errors import InvalidInput
from taskworker.states import Move, State, Trigger, decide

_c = TASKS.c
#: The move every task is inserted with, and the one that follows for a future start_time.
_SUBMIT = decide(State.NONE, Trigger.SUBMIT)
_WAIT_FOR_START = decide(_SUBMIT.to_state, Trigger.POSTPONE)


def columns(task_type: str, body: CreateBody) -> dict[str, Any]:
    """The columns a checked create body is stored with."""
    info, arg = body.create_info, body.process_arg
    values: dict[str, Any] = {
        "task_type": task_type,
        "task_name": info.task_name,
        "important_level": info.important_level,
        "http_url": info.http_url,
        "parent_task_id": info.parent_task_id,
        "control_task_id": info.control_task_id,
        "callback_url": info.callback_url,
        "idempotency_key": info.idempotency_key,
        "resources": info.resources or [],
        "targets": info.targets,
        "strategy": info.strategy.value if info.strategy else None,
        "max_parallel": info.max_parallel,
        "start_time": arg.start_time,
        "deadline_second": arg.deadline_second,
        "lock_timeout": arg.lock_timeout,
        "max_retry": arg.max_retry,
        "retry_backoff": (
            msgspec.to_builtins(arg.retry_backoff) if arg.retry_backoff is not None else None
        ),
        "params": body.params,
    }
    if arg.start_time is not None:
        values["ready_at"] = arg.start_time
    return values


def plain(body: CreateBody) -> bool:
    """Whether the task is one row and one record (no fan-out, not paused, no links to check),
    so that many of them can be inserted together (:func:`store_plain`)."""
    info = body.create_info
    return (
        info.targets is None
        and body.process_arg.task_status != State.PAUSE
        and info.parent_task_id is None
    )


def store_plain(
    conn: Connection,
    items: list[tuple[str, CreateBody]],
    actor: str,
    *,
    links: list[dict[str, Any]] | None = None,
) -> list[int]:
    """Insert many :func:`plain` tasks in two statements; their ids in order (``links``: more
    columns per task, such as a trigger instance's ``trigger_id`` and ``fire_time``)."""
    rows = [
        {**columns(task_type, body), **(links[index] if links else {})}
        for index, (task_type, body) in enumerate(items)
    ]
    return insert_tasks(conn, rows, actor=actor)


def check_links(conn: Connection, body: CreateBody) -> None:
    """Linked tasks must exist; a foreign-key error would otherwise look like a repeat key."""
    links = {
        "create_info.parent_task_id": body.create_info.parent_task_id,
        "create_info.control_task_id": body.create_info.control_task_id,
    }
    for field, linked in links.items():
        if (
            linked is not None
            and conn.execute(select(_c.id).where(_c.id == linked)).one_or_none() is None
        ):
            raise InvalidInput(field, f"no task {linked}")


def insert_task(
    conn: Connection,
    values: Mapping[str, Any],
    *,
    actor: str,
    now: datetime | None = None,
    reason: str | None = None,
) -> int:
    """Store a new task already moved by ``submit`` (``none → init``) with its record."""
    return int(_insert(conn, INSERT_TASK_ID, values, actor=actor, now=now, reason=reason).id)


def insert_task_row(conn: Connection, values: Mapping[str, Any], *, actor: str) -> Row[Any]:
    """:func:`insert_task`, answering with the stored row whole (defaults included), read
    back by the INSERT itself (``RETURNING``) rather than by a query of its own."""
    return _insert(conn, INSERT_TASK_ROW, values, actor=actor)


def _insert(
    conn: Connection,
    statement: Executable,
    values: Mapping[str, Any],
    *,
    actor: str,
    now: datetime | None = None,
    reason: str | None = None,
) -> Row[Any]:
    when = now or utcnow()
    row = {"created_at": when, "updated_at": when, "ready_at": when, **values}
    moves = _moves(row, when)
    row["state"] = moves[-1].to_state.value
    stored = conn.execute(statement, row).one()
    conn.execute(
        INSERT_RECORD, _records(stored.id, moves, row, actor=actor, reason=reason, when=when)
    )
    return stored


def insert_tasks(
    conn: Connection,
    rows: Sequence[Mapping[str, Any]],
    *,
    actor: str,
    now: datetime | None = None,
    reason: str | None = None,
) -> list[int]:
    """:func:`insert_task` for many tasks in two statements: one multi-row ``INSERT ...
    RETURNING`` of the tasks (ids in the order given) and one of their records."""
    if not rows:
        return []
    when = now or utcnow()
    base = {"created_at": when, "updated_at": when, "ready_at": when}
    values = [{**base, **row} for row in rows]
    moves = [_moves(row, when) for row in values]
    for row, made in zip(values, moves, strict=True):
        row["state"] = made[-1].to_state.value
    inserted = conn.execute(
        insert(TASKS).returning(_c.id, sort_by_parameter_order=True), values
    ).scalars()
    ids = [int(task_id) for task_id in inserted]
    records = [
        record
        for task_id, row, made in zip(ids, values, moves, strict=True)
        for record in _records(task_id, made, row, actor=actor, reason=reason, when=when)
    ]
    conn.execute(INSERT_RECORD, records)
    return ids


def _moves(row: Mapping[str, Any], when: datetime) -> tuple[Move, ...]:
    """The moves a task is inserted with: ``submit``, then ``postpone`` when it is not in
    line before a time still to come (its ``start_time``). A task with no ``ready_at`` (a
    child its control task releases) is not postponed: the release puts it in line."""
    ready_at = row.get("ready_at")
    if ready_at is not None and ready_at > when:
        return (_SUBMIT, _WAIT_FOR_START)
    return (_SUBMIT,)


def _records(
    task_id: int,
    moves: Sequence[Move],
    row: Mapping[str, Any],
    *,
    actor: str,
    reason: str | None,
    when: datetime,
) -> list[dict[str, Any]]:
    """The records of a new task's moves; a ``postpone`` one names when the task starts."""
    records = [make_record(task_id, moves[0], actor=actor, reason=reason, attempt=0, when=when)]
    for move in moves[1:]:
        starts = f"waits for its start_time, {row['ready_at'].astimezone(UTC).isoformat()}"
        records.append(make_record(task_id, move, actor=actor, reason=starts, attempt=0, when=when))
    return records
