"""Inserting tasks: a create body becomes a row in ``init`` with its ``submit`` record.

Every way a task comes to exist — a single create, a batch, a topology's nodes, a fan-out's
targets, a trigger's instances — stores it with the columns of :func:`columns`, so one
create body means the same task whichever way it came. Inserting in ``init`` directly saves
the round trip of a separate ``none`` row; the move is still decided by the machine, so the
record replays like any other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Executable, Row, insert, select, update

from taskscheduler.db.models import utcnow
from taskscheduler.db.tables import TASKS
from taskscheduler.tasks.guard import INSERT_RECORD, INSERT_TASK_ID, INSERT_TASK_ROW
from taskscheduler.tasks.transitions import make_record
from taskworker.contract.api import CreateBody
from taskworker.errors import InvalidInput
from taskworker.states import State, Trigger, decide

_c = TASKS.c


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
    move = decide(State.NONE, Trigger.SUBMIT)
    when = now or utcnow()
    row = {"created_at": when, "updated_at": when, "ready_at": when, **values}
    row["state"] = move.to_state.value
    stored = conn.execute(statement, row).one()
    record = make_record(stored.id, move, actor=actor, reason=reason, attempt=0, when=when)
    conn.execute(INSERT_RECORD, record)
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
    move = decide(State.NONE, Trigger.SUBMIT)
    when = now or utcnow()
    base = {"created_at": when, "updated_at": when, "ready_at": when}
    values = [{**base, **row, "state": move.to_state.value} for row in rows]
    inserted = conn.execute(
        insert(TASKS).returning(_c.id, sort_by_parameter_order=True), values
    ).scalars()
    ids = [int(task_id) for task_id in inserted]
    records = [
        make_record(task_id, move, actor=actor, reason=reason, attempt=0, when=when)
        for task_id in ids
    ]
    conn.execute(INSERT_RECORD, records)
    return ids


def unlink_trigger(conn: Connection, trigger_id: int) -> None:
    """The instances of a deleted trigger stay, no longer linked to it."""
    conn.execute(update(TASKS).where(_c.trigger_id == trigger_id).values(trigger_id=None))
