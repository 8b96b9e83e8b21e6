"""Writing task rows by id: the moves' ``UPDATE`` and the changes made beside a move.

Every move (:mod:`~taskscheduler.tasks.transitions`) and every change an operator or a loop
makes beside one (new params, an attempt pointed at another worker) writes one of a few
sets of columns; the statement for each set is built once, with every value a parameter,
and kept: building, keying and compiling a statement costs more than the database takes to
run it.

``version``, the column every decision is conditional on, is written here and nowhere else:
by the moves, and by :func:`write_changes`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Update, bindparam, case, update

from taskscheduler.db.tables import TASKS
from taskworker.errors import ConcurrentUpdate

_c = TASKS.c


@dataclass(frozen=True, slots=True)
class Add:
    """A column's new value is its stored value plus ``n`` (counts, the version)."""

    n: int


@dataclass(frozen=True, slots=True)
class IfCallback:
    """``at`` for a task with a ``callback_url``, else NULL, decided in the UPDATE itself."""

    at: datetime


#: The UPDATE statements of :func:`write_task`, one per set of columns (and kinds of value).
_UPDATES: dict[tuple[Any, ...], Update] = {}


def write_task(
    conn: Connection,
    ids: Sequence[int],
    values: Mapping[str, Any],
    *,
    version: int | None = None,
) -> int:
    """``UPDATE`` the tasks ``ids`` to ``values`` (plain values, :class:`Add` or
    :class:`IfCallback`), only where the version is ``version`` when given; the number of
    rows written."""
    shape = tuple(sorted((name, _kind(value)) for name, value in values.items()))
    key = (shape, version is not None)
    statement = _UPDATES.get(key)
    if statement is None:
        statement = _UPDATES[key] = _statement(values, version is not None)
    params: dict[str, Any] = {f"v_{name}": _param(value) for name, value in values.items()}
    params["ids"] = list(ids)
    if version is not None:
        params["seen_version"] = version
    return int(conn.execute(statement, params).rowcount)


def write_changes(
    conn: Connection, task_id: int, values: Mapping[str, Any], *, version: int, now: datetime
) -> int:
    """Write ``values`` beside any move, as a change of the task: conditional on the version
    the caller saw, which it bumps (an operator's pause or cancel meanwhile wins, raising
    :class:`ConcurrentUpdate`); the new version."""
    changed = {**values, "version": Add(1), "updated_at": now}
    if write_task(conn, [task_id], changed, version=version) != 1:
        raise ConcurrentUpdate(task_id)
    return version + 1


def _statement(values: Mapping[str, Any], versioned: bool) -> Update:
    clauses: list[ColumnElement[bool]] = [_c.id.in_(bindparam("ids", expanding=True))]
    if versioned:
        clauses.append(_c.version == bindparam("seen_version"))
    return (
        update(TASKS)
        .where(*clauses)
        .values({name: _set(name, value) for name, value in values.items()})
    )


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
