"""What every decision about a task reads of it: the guard columns, as a row and as data.

A move is decided from the task's state, ``paused_from``, retry counters and version; the
writer also needs its attempt, type, resources and control task for what the move frees.
The statements that read those columns are built once here, with bound parameters (a
statement built per call costs more in building, keying and compiling than the database
takes to run it). :class:`Seen` is the same columns held by a caller, so a move can be
decided without reading the row again, its write conditional on the version seen.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from sqlalchemy import bindparam, insert, select

from taskscheduler.db.tables import RECORDS, TASKS
from taskworker.states import Move, Trigger

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
ROW_BY_ID = select(TASKS).where(_c.id == bindparam("task_id"))
GUARD_BY_ID = GUARD.where(_c.id == bindparam("task_id"))
GUARD_BY_IDS = GUARD.where(_c.id.in_(bindparam("ids", expanding=True)))
#: in id order, so two callers locking overlapping sets never deadlock
LOCKED_BY_IDS = GUARD_BY_IDS.order_by(_c.id).with_for_update()
INSERT_TASK_ID = insert(TASKS).returning(_c.id)
INSERT_TASK_ROW = insert(TASKS).returning(*_c)
INSERT_RECORD = insert(RECORDS)


class GuardRow(Protocol):
    """A task's guard columns, however they were read: a row of :data:`GUARD` (or of the
    whole table), a :class:`Seen`, or a start copy."""

    @property
    def state(self) -> str: ...
    @property
    def paused_from(self) -> str | None: ...
    @property
    def retry_count(self) -> int: ...
    @property
    def max_retry(self) -> int: ...
    @property
    def version(self) -> int: ...
    @property
    def attempt(self) -> int: ...
    @property
    def task_type(self) -> str: ...
    @property
    def resources(self) -> list[str] | None: ...
    @property
    def control_task_id(self) -> int | None: ...
    @property
    def kind(self) -> str: ...


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
    def moved(cls, row: GuardRow, move: Move, resources: list[str] | None = None) -> Seen:
        """The task as ``move`` leaves it (``resources`` when the move stores new ones):
        the one place that says what a move does to the guard columns."""
        return cls(
            move.to_state.value,
            move.paused_from.value if move.paused_from else None,
            row.retry_count + (move.trigger is Trigger.RETRY),
            row.max_retry,
            row.version + 1,
            row.attempt + (move.trigger is Trigger.CREATE),
            row.task_type,
            row.resources if resources is None else resources,
            row.control_task_id,
            row.kind,
        )

    @classmethod
    def after(cls, row: GuardRow, applied: Applied, resources: list[str] | None = None) -> Seen:
        """The task as ``applied`` left it (``resources``: as its last move stored them). The
        version and attempt are the writer's, which counts any write beside the moves."""
        seen = cls.moved(row, applied.moves[0])
        for move in applied.moves[1:]:
            seen = cls.moved(seen, move)
        return replace(
            seen,
            version=applied.version,
            attempt=applied.attempt,
            resources=seen.resources if resources is None else resources,
        )


@dataclass(frozen=True, slots=True)
class Applied:
    """What a write of one task's moves did, for the caller's follow-up work: the moves in
    order (one for a single trigger, several for a chain) and the version and attempt the
    task has now."""

    task_id: int
    moves: tuple[Move, ...]
    version: int
    attempt: int

    @property
    def move(self) -> Move:
        """The last move: the one that says where the task is now."""
        return self.moves[-1]

    @property
    def triggers(self) -> list[str]:
        return [move.trigger.value for move in self.moves]
