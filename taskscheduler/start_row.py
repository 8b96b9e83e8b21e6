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
from typing import Any

import msgspec
from sqlalchemy import Row, bindparam, select

from taskscheduler.lifecycle import GUARD, TASKS


class StartRow(msgspec.Struct, frozen=True):
    """A task's columns that starting it reads, by their column names (as a row has them)."""

    id: int
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
    ready_at: datetime | None
    http_url: str | None
    task_name: str | None
    important_level: int
    params: dict[str, Any] | None
    target: Any
    deadline_second: float | None
    lock_timeout: float


_COLUMNS = StartRow.__struct_fields__
_missing = {column.name for column in GUARD.selected_columns} - set(_COLUMNS)
assert not _missing, f"StartRow lacks guard columns {_missing}"

#: The same columns read from the database, for the tasks queued without a copy.
READ_TO_START = select(*(TASKS.c[name] for name in _COLUMNS)).where(
    TASKS.c.id.in_(bindparam("ids", expanding=True))
)
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(StartRow).decode


def start_copy(row: Row[Any]) -> bytes:
    """The copy of a whole stored row (``RETURNING`` or ``select(TASKS)``) to queue."""
    values = row._mapping
    return _encode(StartRow(**{name: values[name] for name in _COLUMNS}))


def from_copy(copy: bytes | str) -> StartRow:
    return _decode(copy)
