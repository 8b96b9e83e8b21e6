"""What starting a task reads of it, and the copy of it queued with a task just stored.

The Scheduler loop needs these columns of every task it takes from the queue: the guard
columns its moves are decided from, whether the task is in line, and what its worker is
sent. A task the API has just stored is in hand there, whole, the moment it is committed;
the API queues it with these columns as committed (:data:`StartRow` as JSON in the Redis
entry), and the loop starts it from that copy instead of reading the row again, one read
less on the way of every new task (docs/performance.md).

Acting on a copy is as safe as acting on a read: every write that changes one of these
columns of a task in line (``change``, ``pause``, ``cancel``, ``postpone``...) bumps the
version, and ``create`` is conditional on the version the copy holds. A task that moved
since it was queued is not started from a stale copy; the Dispatcher queues its new
version. An entry without a copy (queued by the Dispatcher) is read as before.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import msgspec
from sqlalchemy import JSON, Row, bindparam, select

from taskscheduler.db.tables import TASKS
from taskscheduler.tasks.guard import GUARD, GuardRow

#: What a start reads besides the guard columns its moves are decided from: whether the task
#: is in line, and what its worker is sent.
_TO_START = (
    "ready_at",
    "http_url",
    "task_name",
    "important_level",
    "params",
    "target",
    "deadline_second",
    "lock_timeout",
    "reverts_task_id",
)
_COLUMNS = [*GUARD.selected_columns, *(TASKS.c[name] for name in _TO_START)]


def _field_type(column: Any) -> Any:
    if isinstance(column.type, JSON):
        return Any
    python_type = column.type.python_type
    return python_type | None if column.nullable else python_type


#: A task's columns that starting it reads, by their column names (as a row has them).
StartRow = msgspec.defstruct(
    "StartRow", [(column.name, _field_type(column)) for column in _COLUMNS], frozen=True
)


class ToStart(GuardRow, Protocol):
    """A task as starting it reads it: a :data:`StartRow` copy, or a row of
    :data:`READ_TO_START` (both by attribute)."""

    @property
    def id(self) -> int: ...
    @property
    def ready_at(self) -> datetime | None: ...
    @property
    def http_url(self) -> str | None: ...
    @property
    def task_name(self) -> str | None: ...
    @property
    def important_level(self) -> int: ...
    @property
    def params(self) -> dict[str, Any] | None: ...
    @property
    def target(self) -> Any: ...
    @property
    def deadline_second(self) -> float | None: ...
    @property
    def lock_timeout(self) -> float: ...
    @property
    def reverts_task_id(self) -> int | None: ...


#: The same columns read from the database, for the tasks queued without a copy.
READ_TO_START = select(*_COLUMNS).where(TASKS.c.id.in_(bindparam("ids", expanding=True)))
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(StartRow).decode


def start_copy(row: Row[Any]) -> bytes:
    """The copy of a whole stored row (``RETURNING`` or ``select(TASKS)``) to queue."""
    values = row._mapping
    return _encode(StartRow(**{column.name: values[column.name] for column in _COLUMNS}))


def from_copy(copy: bytes | str) -> Any:
    """A :data:`StartRow`, read as a row is (by attribute)."""
    return _decode(copy)
