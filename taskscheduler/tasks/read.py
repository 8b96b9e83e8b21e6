"""Reading tasks: one task (``GET /v1/task/{type}``, with ``wait=``), pages of many, a
task's children, history and logs.

Lists are paged by keyset on the id, never by offset: a page costs the same at the end of a
million rows as at the start, and rows inserted meanwhile neither repeat nor skip entries.
Task lists run newest first (``id < cursor``); children and logs run oldest first (``id >
cursor`` / ``after``), the order in which they are read and followed. Every filter is served
by an index named in :mod:`taskscheduler.db.models`.

A page is read in two steps within one statement: the ids of its tasks, from the index that
serves the filter alone, then those tasks' rows. Asked for whole rows at once, MariaDB walks
the table itself whenever it guesses that is cheaper, reading every row newer than the page
(with tasks of other types flowing in, thousands of them), or reads every row of a time
range to sort it; asked for ids, it walks the index, which holds the ids in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, Connection, Engine, Row, Select, insert, or_, select

from taskscheduler.db.engine import reading
from taskscheduler.db.models import utcnow
from taskscheduler.db.tables import LOGS, RECORDS, TASKS
from taskscheduler.tasks.guard import ROW_BY_ID
from taskscheduler.tasks.views import (
    TASK_VIEW_JSON,
    Appended,
    HeartbeatView,
    LogPage,
    SummaryView,
    TaskPage,
    log_view,
    task_view,
    task_views,
    transition_view,
)
from taskscheduler.tasks.waiters import Finishes
from taskscheduler.workers.client import NoWorkerClient, WorkerCommands
from taskworker import states
from taskworker.contract.api import LogBatch, Progress, Query, StatusView, TransitionView
from taskworker.errors import NotFound
from taskworker.states import State

#: Page sizes: the default, and the most one request may ask for.
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000

_c = TASKS.c


def on_worker(row: Row[Any]) -> bool:
    """Whether a worker holds the task ``row`` shows (see :func:`taskworker.states.on_worker`)."""
    return states.on_worker(row.state, row.paused_from, row.worker)


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """``/v1/tasks`` filters; None means "any"."""

    task_type: str | None = None
    state: str | None = None
    outcome: str | None = None
    name: str | None = None
    parent: int | None = None
    since: datetime | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        wanted: list[tuple[Any, Any]] = [
            (_c.task_type, self.task_type),
            (_c.state, self.state),
            (_c.outcome, self.outcome),
            (_c.task_name, self.name),
            (_c.parent_task_id, self.parent),
        ]
        found = [column == value for column, value in wanted if value is not None]
        if self.since is not None:
            found.append(_c.created_at >= self.since)
        return found


class TaskQueries:
    """Reading tasks: one (with ``wait=``), pages of many, their children, history and logs."""

    def __init__(
        self,
        engine: Engine,
        *,
        finishes: Finishes | None = None,
        commands: WorkerCommands | None = None,
    ) -> None:
        self._engine = engine
        self._finishes = finishes or Finishes(None)
        self._commands = commands or NoWorkerClient()

    def row(self, task_type: str, task_id: int) -> Row[Any]:
        """The stored task; :class:`NotFound` also when it exists under another type."""
        with reading(self._engine) as conn:
            row = conn.execute(ROW_BY_ID, {"task_id": task_id}).first()
        if row is None or row.task_type != task_type:
            raise NotFound(f"{task_type} task", task_id)
        return row

    def query(
        self, task_type: str, task_id: int, what: Query | None, *, wait: float | None = None
    ) -> msgspec.Struct:
        """``GET /v1/task/{type}?task_id=ID[&action=...][&wait=S]``: with ``wait``, once the
        task has finished or ``wait`` seconds passed (:mod:`taskscheduler.tasks.waiters`)."""
        if wait:
            found: Row[Any] | None = None

            def finished() -> bool:
                nonlocal found
                found = self.row(task_type, task_id)
                return bool(found.state == State.FINISH)

            # the first look is made once the wait is registered: one read, no end missed
            outcome = self._finishes.wait(task_id, wait, finished)
            if outcome is not None:  # announced: the status needs nothing more
                if what is Query.STATUS:
                    return StatusView(task_id, State.FINISH, outcome)
                found = self.row(task_type, task_id)
            assert found is not None
            row = found
        else:
            row = self.row(task_type, task_id)
        progress = Progress(row.progress_percent, row.progress_message)
        if what is None:
            return task_view(row)
        if what is Query.STATUS:
            return StatusView(row.id, row.state, row.outcome)
        if what is Query.PROGRESS:
            return progress
        if what is Query.HEARTBEAT:
            return HeartbeatView(row.id, row.heartbeat_at, row.worker)
        plugin = self._commands.summary(task_view(row)) if on_worker(row) else None
        return SummaryView(
            task_id=row.id,
            task_status=row.state,
            outcome=row.outcome,
            progress=progress,
            result=row.result,
            error=row.error,
            attempt=row.attempt,
            retry_count=row.retry_count,
            plugin=plugin,
        )

    def tasks(
        self, where: TaskFilter, *, limit: int = DEFAULT_LIMIT, cursor: int | None = None
    ) -> TaskPage:
        """Newest first; ``cursor`` is the previous page's ``next_cursor``."""
        clauses = where.clauses()
        if cursor is not None:
            clauses.append(_c.id < cursor)
        with reading(self._engine) as conn:
            rows = list(conn.execute(_page_query(clauses, _c.id.desc(), limit)))
        return _page(rows, limit)

    def children(
        self, task_id: int, *, limit: int = DEFAULT_LIMIT, cursor: int | None = None
    ) -> TaskPage:
        """Fan-out children (``parent_task_id``) and topology members (``control_task_id``)."""
        clauses = [or_(_c.parent_task_id == task_id, _c.control_task_id == task_id)]
        if cursor is not None:
            clauses.append(_c.id > cursor)
        with reading(self._engine) as conn:
            _require(conn, task_id)
            rows = list(conn.execute(_page_query(clauses, _c.id, limit)))
        return _page(rows, limit)

    def transitions(self, task_id: int) -> list[TransitionView]:
        """The whole record, oldest first (a task has a few dozen at most)."""
        query = select(RECORDS).where(RECORDS.c.task_id == task_id).order_by(RECORDS.c.id)
        with reading(self._engine) as conn:
            _require(conn, task_id)
            return [transition_view(row) for row in conn.execute(query)]

    def logs(self, task_id: int, *, after: int = 0, limit: int = MAX_LIMIT) -> LogPage:
        query = (
            select(LOGS)
            .where(LOGS.c.task_id == task_id, LOGS.c.id > after)
            .order_by(LOGS.c.id)
            .limit(limit)
        )
        with reading(self._engine) as conn:
            _require(conn, task_id)
            items = [log_view(row) for row in conn.execute(query)]
        return LogPage(items, items[-1].id if items else after)

    def append_logs(self, task_id: int, batch: LogBatch) -> Appended:
        """Store a batch in one statement and one commit; lines default to the current attempt."""
        now = utcnow()
        with self._engine.begin() as conn:
            current = _require(conn, task_id)
            rows = [
                {
                    "task_id": task_id,
                    "attempt": current if line.attempt is None else line.attempt,
                    "level": line.level,
                    "message": line.message,
                    "at": line.at or now,
                }
                for line in batch.lines
            ]
            conn.execute(insert(LOGS), rows)
        return Appended(len(rows))


def _page_query(
    clauses: list[ColumnElement[bool]], order: ColumnElement[Any], limit: int
) -> Select[Any]:
    """The tasks of one page and whether there is another (``limit`` + 1 of them)."""
    ids = select(_c.id).where(*clauses).order_by(order).limit(limit + 1).subquery()
    return select(TASK_VIEW_JSON).join_from(TASKS, ids, _c.id == ids.c.id).order_by(order)


def _require(conn: Connection, task_id: int) -> int:
    """The task's current attempt; :class:`NotFound` when there is no such task."""
    attempt = conn.execute(select(_c.attempt).where(_c.id == task_id)).scalar_one_or_none()
    if attempt is None:
        raise NotFound("task", task_id)
    return int(attempt)


def _page(rows: list[Any], limit: int) -> TaskPage:
    items = task_views(rows[:limit])
    more = len(rows) > limit
    return TaskPage(items, items[-1].task_id if more else None)
