"""Applying a trigger to a stored task: decide, then write state and record together.

Every state change in the system goes through :func:`apply_trigger`. Within the caller's
transaction it

1. reads the row's state, guard fields and ``version``;
2. asks the shared machine (:func:`taskworker.states.decide`) where the trigger leads, which
   raises :class:`TransitionRefused` (HTTP 409) and writes nothing when the table forbids it;
3. writes the new state, outcome and per-trigger side effects with
   ``UPDATE ... WHERE id = :id AND version = :version`` and bumps ``version``;
4. appends the transition record;
5. releases the resource locks and wakes the waiters the move frees
   (:func:`taskscheduler.tasks.effects.after_move`).

The caller commits, so the state, the outcome and the record are durable together or not at
all, and a batch of transitions over many tasks can share one commit (commits are the hot
path's currency; ``bench/bench_states.py`` measures them). Two writers that read the same
version cannot both win: the loser's UPDATE matches no row (on MySQL it waits for the
winner's row lock, then re-reads the committed version) and raises
:class:`ConcurrentUpdate` before it writes a record. Lean Core SQL is used here on purpose:
the ORM costs 3x per transition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import msgspec
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    Table,
    bindparam,
    case,
    insert,
    select,
    update,
)

from taskscheduler.db.models import Task, TransitionRecord, utcnow
from taskscheduler.tasks import effects as finish
from taskworker.errors import ConcurrentUpdate, NotFound, TaskError
from taskworker.states import Move, State, Trigger, decide

TASKS = cast(Table, Task.__table__)
RECORDS = cast(Table, TransitionRecord.__table__)
_c = TASKS.c

#: What every decision reads of a task (and what a ``seen`` row must carry).
GUARD = select(
    _c.id,
    _c.state,
    _c.paused_from,
    _c.retry_count,
    _c.max_retry,
    _c.version,
    _c.attempt,
    _c.task_type,
    _c.resources,
    _c.control_task_id,
    _c.kind,
)
# The statements of the hot path, built once: a statement built per call costs more in
# building, keying and compiling than the database takes to run it.
ROW_BY_ID = select(TASKS).where(_c.id == bindparam("task_id"))
GUARD_BY_ID = GUARD.where(_c.id == bindparam("task_id"))
GUARD_BY_IDS = GUARD.where(_c.id.in_(bindparam("ids", expanding=True)))
#: in id order, so two callers locking overlapping sets never deadlock
LOCKED_BY_IDS = GUARD_BY_IDS.order_by(_c.id).with_for_update()
INSERT_TASK_ID = insert(TASKS).returning(_c.id)
INSERT_TASK_ROW = insert(TASKS).returning(*_c)
INSERT_RECORD = insert(RECORDS)


def _side_effects(move: Move, now: datetime) -> dict[str, Any]:
    """Columns a trigger changes besides state/outcome/paused_from, as one table."""
    effects: dict[Trigger, Callable[[], dict[str, Any]]] = {
        # A worker accepted the task: a new attempt begins, fencing the previous one.
        Trigger.CREATE: lambda: {"attempt": Add(1), "heartbeat_at": now},
        Trigger.RUN: lambda: {"started_at": now, "heartbeat_at": now},
        Trigger.RETRY: lambda: {"retry_count": Add(1), "worker": None},
        Trigger.REQUEUE: lambda: {"worker": None},
        # The end is when a callback is owed (the Callback loop reads this column alone).
        Trigger.FINISH: lambda: {"finished_at": now, "callback_due_at": IfCallback(now)},
        Trigger.CANCEL: lambda: {"finished_at": now, "callback_due_at": IfCallback(now)},
    }
    make = effects.get(move.trigger)
    return make() if make else {}


@dataclass(frozen=True, slots=True)
class Add:
    """A column's new value is its stored value plus ``n`` (counts, the version)."""

    n: int


@dataclass(frozen=True, slots=True)
class IfCallback:
    """``at`` for a task with a ``callback_url``, else NULL, decided in the UPDATE itself."""

    at: datetime


#: The UPDATE statements of :func:`write_task`, one per set of columns (and kinds of value).
_UPDATES: dict[tuple[Any, ...], Any] = {}


def write_task(
    conn: Connection, ids: Sequence[int], values: Mapping[str, Any], *, version: int | None = None
) -> int:
    """``UPDATE`` the tasks ``ids`` to ``values`` (plain values, :class:`Add` or
    :class:`IfCallback`), only where the version is ``version`` when given; the number of
    rows written.

    Every move writes one of a few sets of columns, so the statement for each set is built
    once, with every value a parameter, and kept: building, keying and compiling a statement
    costs more than the database takes to run it."""
    shape = tuple(sorted((name, _kind(value)) for name, value in values.items()))
    key = (shape, version is not None)
    statement = _UPDATES.get(key)
    if statement is None:
        where: list[ColumnElement[bool]] = [_c.id.in_(bindparam("ids", expanding=True))]
        if version is not None:
            where.append(_c.version == bindparam("seen_version"))
        statement = _UPDATES[key] = (
            update(TASKS)
            .where(*where)
            .values({name: _set(name, value) for name, value in values.items()})
        )
    params: dict[str, Any] = {f"v_{name}": _param(value) for name, value in values.items()}
    params["ids"] = list(ids)
    if version is not None:
        params["seen_version"] = version
    return int(conn.execute(statement, params).rowcount)


def _kind(value: Any) -> str:
    return "add" if isinstance(value, Add) else "if" if isinstance(value, IfCallback) else "="


def _param(value: Any) -> Any:
    if isinstance(value, Add):
        return value.n
    return value.at if isinstance(value, IfCallback) else value


def _set(name: str, value: Any) -> Any:
    column = _c[name]
    if isinstance(value, Add):
        return column + bindparam(f"v_{name}", type_=column.type)
    if isinstance(value, IfCallback):
        then = bindparam(f"v_{name}", type_=column.type)
        return case((_c.callback_url.is_not(None), then), else_=None)
    return bindparam(f"v_{name}", type_=column.type)


@dataclass(frozen=True, slots=True)
class Applied:
    """The outcome of one applied trigger, for the caller's follow-up work."""

    task_id: int
    move: Move
    version: int
    attempt: int


@dataclass(frozen=True, slots=True)
class Seen:
    """A task's guard columns as the caller knows them (``apply_trigger(seen=...)``)."""

    state: str
    paused_from: str | None
    retry_count: int
    max_retry: int
    version: int
    attempt: int
    task_type: str
    resources: list[str] | None
    control_task_id: int | None
    kind: str

    @classmethod
    def after(cls, row: Any, applied: Applied, resources: list[str] | None = None) -> Seen:
        """The task as ``applied`` left it (``row``: as read before; retry_count unchanged;
        ``resources`` when the move stored new ones)."""
        move = applied.move
        return cls(
            move.to_state.value,
            move.paused_from.value if move.paused_from else None,
            row.retry_count,
            row.max_retry,
            applied.version,
            applied.attempt,
            row.task_type,
            row.resources if resources is None else resources,
            row.control_task_id,
            row.kind,
        )


def decide_row(row: Any, trigger: str, *, task_id: int, outcome: str | None = None) -> Move:
    """Where ``trigger`` leads the task whose guard columns ``row`` holds (or refuse)."""
    return decide(
        row.state,
        trigger,
        paused_from=row.paused_from,
        retry_count=row.retry_count,
        max_retry=row.max_retry,
        outcome=outcome,
        task_id=task_id,
    )


def apply_trigger(
    conn: Connection,
    task_id: int,
    trigger: str,
    *,
    actor: str,
    reason: str | None = None,
    outcome: str | None = None,
    expect_version: int | None = None,
    changes: Mapping[str, Any] | None = None,
    now: datetime | None = None,
    seen: Any = None,
    records: list[dict[str, Any]] | None = None,
) -> Applied:
    """Apply ``trigger`` to task ``task_id`` inside ``conn``'s transaction (caller commits).

    ``expect_version`` makes the write conditional on a version the caller saw earlier (for
    read-decide-write flows spanning requests); otherwise the version read here is used.
    ``changes`` are extra columns written in the same UPDATE (result, error, worker, ...).

    ``seen`` is the task's row as the caller already read it (with the guard columns:
    state, paused_from, retry_count, max_retry, version, attempt, task_type, resources,
    control_task_id, kind); the move is
    then decided from it without reading the row again — a round trip less on the hot path,
    and just as safe, because the write is conditional on ``seen.version``.

    ``records``, when given, collects the transition record instead of inserting it, so a
    caller moving many tasks writes all their records in one statement
    (:func:`write_records`) before its commit.
    """
    row = seen if seen is not None else conn.execute(GUARD_BY_ID, {"task_id": task_id}).first()
    if row is None:
        raise NotFound("task", task_id)
    version = row.version if expect_version is None else expect_version
    if version != row.version:
        raise ConcurrentUpdate(task_id)
    move = decide_row(row, trigger, task_id=task_id, outcome=outcome)
    when = now or utcnow()
    values: dict[str, Any] = {
        "state": move.to_state.value,
        "paused_from": move.paused_from.value if move.paused_from else None,
        "version": version + 1,
        "updated_at": when,
        **_side_effects(move, when),
        **(changes or {}),
    }
    if move.outcome is not None:
        values["outcome"] = move.outcome.value
    if write_task(conn, [task_id], values, version=version) != 1:
        raise ConcurrentUpdate(task_id)
    attempt = row.attempt + 1 if move.trigger is Trigger.CREATE else row.attempt
    record = _record(task_id, move, actor=actor, reason=reason, attempt=attempt, when=when)
    if records is None:
        conn.execute(INSERT_RECORD, record)
    else:
        records.append(record)
    resources = (changes or {}).get("resources", row.resources)
    finish.after_move(conn, task_id, move, row, resources=resources, now=when)
    return Applied(task_id, move, version + 1, attempt)


@dataclass(frozen=True, slots=True)
class Planned:
    """One task's part in :func:`apply_many`: the version the caller saw (None: whatever is
    stored), the extra columns to write, the reason for its (first) record, the outcome of a
    ``finish``, and the triggers applied ``then``, after the first, in the same write.
    ``seen``: the task's row as the caller read it (with the guard columns, as for
    :func:`apply_trigger`), so that a plan alone in its call is written without reading the
    row again."""

    task_id: int
    expect_version: int | None = None
    changes: Mapping[str, Any] | None = None
    reason: str | None = None
    outcome: str | None = None
    then: tuple[str, ...] = ()
    seen: Any = None


def apply_many(
    conn: Connection,
    trigger: str,
    planned: Sequence[Planned],
    *,
    actor: str,
    now: datetime | None = None,
) -> dict[int, Applied | TaskError]:
    """:func:`apply_trigger` for many tasks in a few statements, whatever their number.

    The rows are read and locked in one query (``FOR UPDATE``, in id order, so two callers
    never deadlock; SQLite's ``BEGIN IMMEDIATE`` already holds the write lock), each move is
    decided from them, the tasks whose new columns are the same are written by one UPDATE,
    and all records by one INSERT. A task that moved since its caller saw it, or whose move
    the table refuses, gets that error instead of an :class:`Applied` and is not written.

    A plan's ``then`` triggers follow ``trigger`` in the same UPDATE, each decided from the
    state the one before left and recorded on its own (``succeed`` then ``finish``;
    ``create`` then ``prepare``): the table is asked for every step, and a refused one leaves
    the task as it was. The :class:`Applied` is the last move's.

    A single plan with its ``seen`` row (the idle path: one task started, one run reported)
    skips the read: its move is decided from ``seen`` and its UPDATE is conditional on
    ``seen.version``, as in :func:`apply_trigger`. Many plans are read and locked together,
    since one UPDATE per group cannot check each task's own version.
    """
    when = now or utcnow()
    alone = planned[0].seen if len(planned) == 1 else None
    if alone is not None:
        rows = {planned[0].task_id: alone}
    else:
        ids = sorted(p.task_id for p in planned)
        rows = {r.id: r for r in conn.execute(LOCKED_BY_IDS, {"ids": ids})}
    results: dict[int, Applied | TaskError] = {}
    groups: dict[bytes, list[_Step]] = {}
    for plan in planned:
        row = rows.get(plan.task_id)
        try:
            if row is None:
                raise NotFound("task", plan.task_id)
            if plan.expect_version not in (None, row.version):
                raise ConcurrentUpdate(plan.task_id)
            steps = _chain(row, (trigger, *plan.then), plan)
        except TaskError as exc:
            results[plan.task_id] = exc
            continue
        moves = [move for move, _ in steps]
        shape = [(m.trigger, m.to_state, m.outcome) for m in moves]
        key = msgspec.json.encode([shape, moves[-1].paused_from, plan.changes], order="sorted")
        groups.setdefault(key, []).append((plan, row, steps))
    records: list[dict[str, Any]] = []
    for group in groups.values():
        group_ids = [plan.task_id for plan, _, _ in group]
        seen_version = alone.version if alone is not None else None
        written = write_task(conn, group_ids, _new_columns(group[0], when), version=seen_version)
        if written != len(group_ids):
            if alone is None:  # impossible with the rows locked: stop here
                raise ConcurrentUpdate(group_ids[0])
            results[group_ids[0]] = ConcurrentUpdate(group_ids[0])  # it moved since seen
            continue
        for step in group:
            results[step[0].task_id] = _written(conn, step, records, actor=actor, when=when)
    write_records(conn, records)
    return results


#: One plan of :func:`apply_many`, with its row and its moves (each with the task before it).
_Step = tuple[Planned, Any, list[tuple[Move, Any]]]


def _new_columns(step: _Step, when: datetime) -> dict[str, Any]:
    """What the UPDATE of a group of :func:`apply_many` writes (the same for the group)."""
    plan, _, steps = step
    last = steps[-1][0]
    values: dict[str, Any] = {
        "state": last.to_state.value,
        "paused_from": last.paused_from.value if last.paused_from else None,
        "version": Add(len(steps)),
        "updated_at": when,
    }
    for move, _ in steps:
        values.update(_side_effects(move, when))
        if move.outcome is not None:
            values["outcome"] = move.outcome.value
    values.update(plan.changes or {})
    return values


def _written(
    conn: Connection, step: _Step, records: list[dict[str, Any]], *, actor: str, when: datetime
) -> Applied:
    """A plan's moves once written: their records collected, their side effects run."""
    plan, row, steps = step
    resources = (plan.changes or {}).get("resources", row.resources)
    reason = plan.reason  # the first move's
    attempt = row.attempt
    for move, before in steps:
        attempt = before.attempt + 1 if move.trigger is Trigger.CREATE else before.attempt
        records.append(
            _record(plan.task_id, move, actor=actor, reason=reason, attempt=attempt, when=when)
        )
        reason = None
        finish.after_move(conn, plan.task_id, move, before, resources=resources, now=when)
    return Applied(plan.task_id, steps[-1][0], row.version + len(steps), attempt)


def _chain(row: Any, triggers: Sequence[str], plan: Planned) -> list[tuple[Move, Any]]:
    """Each trigger's move, decided from the task as the one before left it, with that
    task (``plan.outcome`` goes to the last, the ``finish``)."""
    steps: list[tuple[Move, Any]] = []
    current = row
    for index, trigger in enumerate(triggers):
        outcome = plan.outcome if index == len(triggers) - 1 else None
        move = decide_row(current, trigger, task_id=plan.task_id, outcome=outcome)
        steps.append((move, current))
        current = Seen(
            move.to_state.value,
            move.paused_from.value if move.paused_from else None,
            current.retry_count + (move.trigger is Trigger.RETRY),
            current.max_retry,
            current.version + 1,
            current.attempt + (move.trigger is Trigger.CREATE),
            current.task_type,
            current.resources,
            current.control_task_id,
            current.kind,
        )
    return steps


def write_records(conn: Connection, records: list[dict[str, Any]]) -> None:
    """Insert the records collected by ``apply_trigger(records=...)``, in one statement."""
    if records:
        # one record alone is a plain execute: the driver's executemany costs more for one
        conn.execute(INSERT_RECORD, records[0] if len(records) == 1 else records)
        records.clear()


def _record(
    task_id: int,
    move: Move,
    *,
    actor: str,
    reason: str | None,
    attempt: int,
    when: datetime,
) -> dict[str, Any]:
    """The transition record of ``move`` (committed with the move by the caller)."""
    return {
        "task_id": task_id,
        "trigger": move.trigger.value,
        "from_state": move.from_state.value,
        "to_state": move.to_state.value,
        "outcome": move.outcome.value if move.outcome else None,
        "actor": actor,
        "reason": reason[:1024] if reason else None,
        "attempt": attempt,
        "at": when,
    }


def transition(engine: Engine, task_id: int, trigger: str, **kwargs: Any) -> Applied:
    """:func:`apply_trigger` in a transaction of its own, committed before returning."""
    with engine.begin() as conn:
        return apply_trigger(conn, task_id, trigger, **kwargs)


def insert_task(
    conn: Connection,
    values: Mapping[str, Any],
    *,
    actor: str,
    now: datetime | None = None,
    reason: str | None = None,
) -> int:
    """Store a new task already moved by ``submit`` (``none → init``) with its record.

    Inserting in ``init`` directly saves the round trip of a separate ``none`` row; the move
    is still decided by the machine, so the record replays like any other.
    """
    return int(_insert(conn, INSERT_TASK_ID, values, actor=actor, now=now, reason=reason).id)


def insert_task_row(conn: Connection, values: Mapping[str, Any], *, actor: str) -> Row[Any]:
    """:func:`insert_task`, answering with the stored row whole (defaults included), read
    back by the INSERT itself (``RETURNING``) rather than by a query of its own."""
    return _insert(conn, INSERT_TASK_ROW, values, actor=actor)


def _insert(
    conn: Connection,
    statement: Any,
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
    record = _record(stored.id, move, actor=actor, reason=reason, attempt=0, when=when)
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
        _record(task_id, move, actor=actor, reason=reason, attempt=0, when=when) for task_id in ids
    ]
    conn.execute(INSERT_RECORD, records)
    return ids
