"""``POST /v1/reports``: many workers' reports in one request, each applied on its own.

A worker batches progress, heartbeats, log lines and results (MEASURED.md: one HTTP round
trip costs as much as the rest of a task's path). Each item is applied exactly as its single
endpoint would apply it (``PUT /v1/task/{type}?action=...&attempt=N`` or ``POST
/v1/tasks/{id}/logs``), with the same attempt fence: an item of an attempt that is no longer
the task's current one is refused with 409 ``Stale attempt`` and changes nothing.

The answer is 200 with one result per item, in order, carrying the status the item would
have had alone; the worker drops what was refused (4xx) and keeps what must be retried
(5xx). When the database fails mid-batch, that item and all after it are answered 503 and
left unapplied, so a retry of them never duplicates a log line that was stored.
Consecutive log lines of one attempt are stored together (one commit).
"""

from __future__ import annotations

import logging
from itertools import groupby

import falcon

from taskscheduler.api.auth import WORKER_OR_ADMIN, Guarded
from taskscheduler.api.media import body, reply
from taskscheduler.services import Services
from taskworker.contract import (
    Action,
    LogBatch,
    LogLine,
    LogReport,
    NotifyBody,
    NotifyReport,
    ProgressBody,
    ProgressReport,
    Report,
    ReportBatch,
    ReportResult,
    ReportResults,
    encode,
)
from taskworker.errors import StaleAttempt, TaskError

log = logging.getLogger(__name__)

#: Seconds of backoff a worker should allow before retrying items answered 503.
RETRY_AFTER_SECONDS = 2


class Reports(Guarded):
    ACCESS = {"POST": WORKER_OR_ADMIN}

    def __init__(self, services: Services) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        batch = body(req, ReportBatch)
        reply(resp, ReportResults(self._apply(batch.reports, req.context.actor)))

    def _apply(self, reports: list[Report], actor: str) -> list[ReportResult]:
        results: list[ReportResult] = []
        down: Exception | None = None
        for key, group in groupby(reports, key=_log_group):
            items = list(group)
            if down is None:
                try:
                    status = self._apply_group(key, items, actor)
                except TaskError as exc:
                    status = ReportResult(exc.http_status, exc.title, exc.message)
                except Exception as exc:  # the database failed: apply nothing more
                    log.warning("reports left unapplied: %s", exc)
                    down = exc
            if down is not None:
                status = ReportResult(503, "Service unavailable", "not applied; send it again")
            results.extend([status] * len(items))
        return results

    def _apply_group(self, key: object, items: list[Report], actor: str) -> ReportResult:
        first = items[0]
        if isinstance(first, LogReport):
            current = self._services.tasks.row(first.task_type, first.task_id).attempt
            if first.attempt != current:
                raise StaleAttempt(first.task_id, first.attempt, current)
            lines = [
                LogLine(message=i.message, level=i.level, at=i.at, attempt=i.attempt)
                for i in items
                if isinstance(i, LogReport)
            ]
            self._services.queries.append_logs(first.task_id, LogBatch(lines))
            return ReportResult(201)
        action, payload = _as_action(first)
        self._services.actions.act(
            first.task_type,
            first.task_id,
            action,
            payload,
            actor=actor,
            attempt=first.attempt,
        )
        return ReportResult(200)


def _log_group(item: Report) -> object:
    """Consecutive log lines of one attempt share a key; every other report is alone."""
    if isinstance(item, LogReport):
        return ("log", item.task_id, item.attempt)
    return id(item)


def _as_action(item: Report) -> tuple[Action, bytes]:
    if isinstance(item, ProgressReport):
        return Action.PROGRESS, encode(ProgressBody(item.percent, item.message))
    if isinstance(item, NotifyReport):
        return Action.NOTIFY, encode(NotifyBody(item.success, item.result, item.error))
    return Action.HEARTBEAT, b"{}"
