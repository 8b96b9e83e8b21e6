"""Applying a trigger to a stored task: decide, then write state and record together.

Every state change in the system goes through :func:`apply_trigger` (one task, one move) or
:func:`~taskscheduler.tasks.bulk.apply_many` (many tasks, or a chain of moves). Within the
caller's transaction they

1. read the row's guard columns (:mod:`~taskscheduler.tasks.guard`), or take them as the
   caller saw them;
2. ask the shared machine (:func:`taskworker.states.decide`) where the trigger leads, which
   raises :class:`TransitionRefused` (HTTP 409) and writes nothing when the table forbids it;
3. write the new state, outcome and per-trigger side effects with
   ``UPDATE ... WHERE id = :id AND version = :version`` and bump ``version``;
4. append the transition record;
5. run what the move frees or announces (:func:`taskscheduler.tasks.effects.after_move`).

Events that move nothing but belong in the same account — params changed, an attempt
handed to another worker — are recorded by :func:`write_note`, in the transaction of what
they did, with ``from_state`` = ``to_state``.

The caller commits, so the state, the outcome and the record are durable together or not at
all, and a batch of transitions over many tasks can share one commit (commits are the hot
path's currency; ``bench/bench_states.py`` measures them). Two writers that read the same
version cannot both win: the loser's UPDATE matches no row (on MySQL it waits for the
winner's row lock, then re-reads the committed version) and raises
:class:`ConcurrentUpdate` before it writes a record. Lean Core SQL is used here on purpose:
the ORM costs 3x per transition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, event, insert

from taskscheduler.db.models import utcnow
from taskscheduler.db.tables import RECORDS
from taskscheduler.tasks import effects
from taskscheduler.tasks.guard import GUARD_BY_ID, INSERT_RECORD, Applied, GuardRow, Seen
from taskscheduler.tasks.write import Add, IfCallback, write_task
from taskworker.errors import ConcurrentUpdate, NotFound
from taskworker.states import Move, Trigger, decide

#: One move of a chain, with the task as it was before it.
Step = tuple[Move, GuardRow]
#: Where a connection keeps the moves its transaction wrote, and its savepoints' marks.
_MOVES = "taskscheduler.tasks.transitions.moves"
_MARKS = "taskscheduler.tasks.transitions.marks"
#: Who is told the moves committed through an engine (:func:`count_moves`).
_COUNTS: WeakKeyDictionary[Engine, Callable[[Iterable[tuple[str, str | None]]], None]] = (
    WeakKeyDictionary()
)
#: The longest reason a record keeps (the column's length).
MAX_REASON = 1024
#: A note's record: the same table, but a statement of its own, so that what watches
#: :data:`INSERT_RECORD` for the moves (:func:`count_moves`) never counts a note as one.
_INSERT_NOTE = insert(RECORDS)


class Note(StrEnum):
    """Events recorded beside the moves (the ``trigger`` of a record that moves nothing)."""

    #: ``action=change``: params or process_arg replaced; the reason says which, by whom.
    CHANGE = "change"
    #: The attempt was handed to another worker before it ran; the reason names both.
    REASSIGN = "reassign"


def side_effects(move: Move, now: datetime) -> dict[str, Any]:
    """Columns a trigger changes besides state/outcome/paused_from, as one table."""
    effects_of: dict[Trigger, Callable[[], dict[str, Any]]] = {
        # A worker accepted the task: a new attempt begins, fencing the previous one.
        Trigger.CREATE: lambda: {"attempt": Add(1), "heartbeat_at": now},
        Trigger.RUN: lambda: {"started_at": now, "heartbeat_at": now},
        Trigger.RETRY: lambda: {"retry_count": Add(1), "worker": None},
        Trigger.REQUEUE: lambda: {"worker": None},
        # Who paused it is told by the caller (a control task says it was the one).
        Trigger.PAUSE: lambda: {"paused_by_control": False},
        # The end is when a callback is owed (the Callback loop reads this column alone).
        Trigger.FINISH: lambda: {"finished_at": now, "callback_due_at": IfCallback(now)},
        Trigger.CANCEL: lambda: {"finished_at": now, "callback_due_at": IfCallback(now)},
    }
    make = effects_of.get(move.trigger)
    return make() if make else {}


def decide_row(row: GuardRow, trigger: str, *, task_id: int, outcome: str | None = None) -> Move:
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


def chain(
    row: GuardRow, triggers: Sequence[str], *, task_id: int, outcome: str | None = None
) -> list[Step]:
    """Each trigger's move, decided from the task as the one before left it, with that
    task (``outcome`` goes to the last, the ``finish``). The one place moves are chained:
    a refused step raises before anything is written."""
    steps: list[Step] = []
    current = row
    for index, trigger in enumerate(triggers):
        last = index == len(triggers) - 1
        move = decide_row(current, trigger, task_id=task_id, outcome=outcome if last else None)
        steps.append((move, current))
        current = Seen.moved(current, move)
    return steps


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
    seen: GuardRow | None = None,
    records: list[dict[str, Any]] | None = None,
) -> Applied:
    """Apply ``trigger`` to task ``task_id`` inside ``conn``'s transaction (caller commits).

    ``expect_version`` makes the write conditional on a version the caller saw earlier (for
    read-decide-write flows spanning requests); otherwise the version read here is used.
    ``changes`` are extra columns written in the same UPDATE (result, error, worker, ...).

    ``seen`` is the task's guard columns as the caller already read them; the move is then
    decided from them without reading the row again — a round trip less on the hot path,
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
        **side_effects(move, when),
        **(changes or {}),
    }
    if move.outcome is not None:
        values["outcome"] = move.outcome.value
    if write_task(conn, [task_id], values, version=version) != 1:
        raise ConcurrentUpdate(task_id)
    attempt = row.attempt + 1 if move.trigger is Trigger.CREATE else row.attempt
    record = make_record(task_id, move, actor=actor, reason=reason, attempt=attempt, when=when)
    if records is None:
        conn.execute(INSERT_RECORD, record)
    else:
        records.append(record)
    resources = (changes or {}).get("resources", row.resources)
    effects.after_move(conn, task_id, move, row, resources=resources, now=when)
    return Applied(task_id, (move,), version + 1, attempt)


def transition(engine: Engine, task_id: int, trigger: str, **kwargs: Any) -> Applied:
    """:func:`apply_trigger` in a transaction of its own, committed before returning."""
    with engine.begin() as conn:
        return apply_trigger(conn, task_id, trigger, **kwargs)


def write_records(conn: Connection, records: list[dict[str, Any]]) -> None:
    """Insert the records collected by ``apply_trigger(records=...)``, in one statement."""
    if records:
        # one record alone is a plain execute: the driver's executemany costs more for one
        conn.execute(INSERT_RECORD, records[0] if len(records) == 1 else records)
        records.clear()


def make_record(
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
        "reason": reason[:MAX_REASON] if reason else None,
        "attempt": attempt,
        "at": when,
    }


def write_note(
    conn: Connection,
    task_id: int,
    note: Note,
    *,
    state: str,
    actor: str,
    reason: str,
    attempt: int,
    when: datetime,
) -> None:
    """Record ``note``, an event that moves nothing, in ``conn``'s transaction: written with
    what it did, so the account of a task never misses a change nor tells one that did not
    commit. ``state`` is the task's, as the version-checked write of the event found it."""
    conn.execute(
        _INSERT_NOTE,
        {
            "task_id": task_id,
            "trigger": note.value,
            "from_state": state,
            "to_state": state,
            "outcome": None,
            "actor": actor,
            "reason": reason[:MAX_REASON],
            "attempt": attempt,
            "at": when,
        },
    )


def count_moves(engine: Engine, count: Callable[[Iterable[tuple[str, str | None]]], None]) -> None:
    """Have ``count`` told every move written through ``engine`` once its transaction has
    committed, as ``(trigger, outcome)`` pairs (a rolled-back move is never told).

    Every move writes exactly one record, and every move's record is written by one
    statement, :data:`~taskscheduler.tasks.guard.INSERT_RECORD` (by :func:`apply_trigger`,
    :func:`write_records` and :mod:`~taskscheduler.tasks.store`), so its executions are
    the one place where every move of every process is seen: the API's and the loops' alike,
    one task or a batch. A savepoint rolled back takes its moves with it. Called again for
    the same engine (a test building another node over its pool), the newest ``count`` is
    the one told.
    """
    installed = engine in _COUNTS
    _COUNTS[engine] = count
    if installed:
        return

    @event.listens_for(engine, "after_execute")
    def _written(conn: Connection, statement: Any, many: Any, one: Any, *_: Any) -> None:
        if statement is INSERT_RECORD:
            rows = many or (one,)
            conn.info.setdefault(_MOVES, []).extend((r["trigger"], r["outcome"]) for r in rows)

    @event.listens_for(engine, "savepoint")
    def _savepoint(conn: Connection, name: str) -> None:
        conn.info.setdefault(_MARKS, []).append(len(conn.info.get(_MOVES, ())))

    @event.listens_for(engine, "rollback_savepoint")
    def _savepoint_undone(conn: Connection, name: str, context: Any) -> None:
        marks = conn.info.get(_MARKS)
        if marks and (moves := conn.info.get(_MOVES)) is not None:
            del moves[marks[-1] :]

    @event.listens_for(engine, "release_savepoint")
    def _savepoint_done(conn: Connection, name: str, context: Any) -> None:
        if marks := conn.info.get(_MARKS):
            marks.pop()

    @event.listens_for(engine, "commit")
    def _committed(conn: Connection) -> None:
        conn.info.pop(_MARKS, None)
        if moves := conn.info.pop(_MOVES, None):
            _COUNTS[engine](moves)

    @event.listens_for(engine, "rollback")
    def _rolled_back(conn: Connection) -> None:
        conn.info.pop(_MARKS, None)
        conn.info.pop(_MOVES, None)

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        # a connection closed without commit or rollback events (the pool's reset) wrote
        # nothing that lasts: its moves must not count with the next transaction's
        record.info.pop(_MARKS, None)
        record.info.pop(_MOVES, None)
