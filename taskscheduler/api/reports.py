"""``POST /v1/reports``: many workers' reports in one request, applied in one transaction.

A worker batches progress, heartbeats, log lines and results (MEASURED.md: one HTTP round
trip costs as much as the rest of a task's path, and a commit as much again). Each item is
applied exactly as its single endpoint would apply it (``PUT /v1/task/{type}?action=...&attempt=N``
or ``POST /v1/tasks/{id}/logs``), with the same attempt fence: an item of an attempt that is
no longer the task's current one is refused with 409 ``Stale attempt`` and changes nothing.

The answer is 200 with one result per item, in order, carrying the status the item would
have had alone; the worker drops what was refused (4xx) and keeps what must be retried
(5xx). All items share one transaction and one commit: the tasks are read in one query, and
an item that is refused raises before it writes anything (a result's several moves are
decided from the row it locked with its first write, so a later one cannot be refused), so
the others commit without it. When the database fails, nothing of the batch is committed
and every item is answered 503: a retry of them never duplicates a log line.
"""

from __future__ import annotations

import logging
from itertools import groupby
from typing import Any

import falcon
from sqlalchemy import Connection, insert

from taskscheduler.api.auth import WORKER_OR_ADMIN, Guarded
from taskscheduler.api.media import body, reply
from taskscheduler.db.models import utcnow
from taskscheduler.lifecycle import GUARD, TASKS, write_records
from taskscheduler.services import Services
from taskscheduler.task_actions import notify, record_progress, touch
from taskscheduler.task_queries import LOGS
from taskworker.contract import (
    Action,
    LogReport,
    NotifyBody,
    NotifyReport,
    ProgressBody,
    ProgressReport,
    Report,
    ReportBatch,
    ReportResult,
    ReportResults,
)
from taskworker.errors import NotFound, StaleAttempt, TaskError

log = logging.getLogger(__name__)

_c = TASKS.c


class Reports(Guarded):
    ACCESS = {"POST": WORKER_OR_ADMIN}

    def __init__(self, services: Services) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        batch = body(req, ReportBatch)
        reply(resp, ReportResults(self._apply(batch.reports, req.context.actor)))

    def _apply(self, reports: list[Report], actor: str) -> list[ReportResult]:
        results: list[ReportResult] = []
        moved: list[str] = []
        records: list[dict[str, Any]] = []
        try:
            with self._services.engine.begin() as conn:
                tasks = _tasks(conn, reports)
                for _, group in groupby(reports, key=_log_group):
                    items = list(group)
                    try:
                        status = _apply_group(conn, tasks, items, actor, moved, records)
                    except TaskError as exc:
                        status = ReportResult(exc.http_status, exc.title, exc.message)
                    results.extend([status] * len(items))
                write_records(conn, records)
        except Exception as exc:  # the database failed: nothing of the batch is committed
            log.warning("reports left unapplied: %s", exc)
            unapplied = ReportResult(503, "Service unavailable", "not applied; send it again")
            return [unapplied] * len(reports)
        self._services.metrics.count_transitions(moved)
        return results


def _tasks(conn: Connection, reports: list[Report]) -> dict[int, Any]:
    """The batch's tasks, in one query: their type, current attempt and what a move is
    decided from (a result's moves are then decided without reading the row again)."""
    ids = {item.task_id for item in reports}
    return {row.id: row for row in conn.execute(GUARD.where(_c.id.in_(ids)))}


def _apply_group(  # noqa: PLR0917 — the batch's shared state, passed along
    conn: Connection,
    tasks: dict[int, Any],
    items: list[Report],
    actor: str,
    moved: list[str],
    records: list[dict[str, Any]],
) -> ReportResult:
    first = items[0]
    task = tasks.get(first.task_id)
    if task is None or task.task_type != first.task_type:
        raise NotFound(f"{first.task_type} task", first.task_id)
    if first.attempt != task.attempt:
        raise StaleAttempt(first.task_id, first.attempt, task.attempt)
    if isinstance(first, LogReport):
        lines = [
            {
                "task_id": first.task_id,
                "attempt": first.attempt,
                "level": item.level,
                "message": item.message,
                "at": item.at or utcnow(),
            }
            for item in items
            if isinstance(item, LogReport)
        ]
        conn.execute(insert(LOGS), lines)
        return ReportResult(201)
    if isinstance(first, ProgressReport):
        record_progress(conn, first.task_id, ProgressBody(first.percent, first.message))
    elif isinstance(first, NotifyReport):
        body = NotifyBody(first.success, first.result, first.error)
        applied = notify(conn, first.task_id, body, actor=actor, seen=task, records=records)
        moved.extend(a.move.trigger.value for a in applied)
    else:
        touch(conn, first.task_id, Action.HEARTBEAT)
    return ReportResult(200)


def _log_group(item: Report) -> object:
    """Consecutive log lines of one attempt share a key; every other report is alone."""
    if isinstance(item, LogReport):
        return ("log", item.task_id, item.attempt)
    return id(item)
