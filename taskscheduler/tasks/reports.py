"""Workers' reports (``POST /v1/reports``), many in one request, applied in one transaction.

A worker batches progress, heartbeats, log lines and results (one HTTP round
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
from collections import Counter
from itertools import groupby
from typing import Any

from sqlalchemy import Connection, Engine, insert

from taskscheduler.db.models import utcnow
from taskscheduler.db.tables import LOGS
from taskscheduler.tasks.actions import record_progress, touch
from taskscheduler.tasks.bulk import apply_many
from taskscheduler.tasks.guard import GUARD_BY_IDS
from taskscheduler.tasks.settle import notify, planned
from taskscheduler.tasks.transitions import write_records
from taskworker.contract.api import Action, NotifyBody, ProgressBody
from taskworker.contract.worker import (
    LogReport,
    NotifyReport,
    ProgressReport,
    Report,
    ReportResult,
)
from taskworker.errors import NotFound, StaleAttempt, TaskError, Unavailable
from taskworker.states import ROLLBACK_FROM, State, Trigger

log = logging.getLogger(__name__)


def apply_reports(
    engine: Engine, reports: list[Report], actor: str
) -> tuple[list[ReportResult], list[str]]:
    """Apply a batch of reports: one result per item, in order, and the triggers moved."""
    results: list[ReportResult] = []
    try:
        with engine.begin() as conn:
            batch = _Batch(conn, actor, reports)
            for _, group in groupby(reports, key=_log_group):
                items = list(group)
                try:
                    status = batch.apply(len(results), items)
                except TaskError as exc:
                    status = _refused(exc)
                results.extend([status] * len(items))
            batch.finish_succeeded(results)
    except Exception as exc:  # the database failed: nothing of the batch is committed
        log.warning("reports left unapplied: %s", exc)
        unapplied = ReportResult(503, "Service unavailable", "not applied; send it again")
        return [unapplied] * len(reports), []
    return results, batch.moved


class _Batch:
    """One report batch being applied in one transaction.

    The batch's tasks are read in one query, and the most common report, a run that
    succeeded, is applied for all such tasks together (two statements for ``succeed`` and
    ``finish`` of the lot, see :func:`~taskscheduler.tasks.transitions.apply_many`) once every other
    item was applied in order. Only a task's last item of the batch is deferred that way, so
    each task still sees its own reports in the order they were sent.
    """

    def __init__(self, conn: Connection, actor: str, reports: list[Report]) -> None:
        self.conn = conn
        self.actor = actor
        ids = {item.task_id for item in reports}
        self.tasks = {row.id: row for row in conn.execute(GUARD_BY_IDS, {"ids": list(ids)})}
        self.last = {item.task_id: index for index, item in enumerate(reports)}
        #: tasks with one item in the batch: as read above until their deferred success
        self.single = {t for t, n in Counter(item.task_id for item in reports).items() if n == 1}
        self.moved: list[str] = []
        self.records: list[dict[str, Any]] = []
        #: (index in the results, report) of the runs that succeeded, applied together
        self.succeeded: list[tuple[int, NotifyReport]] = []

    def apply(self, index: int, items: list[Report]) -> ReportResult:
        first = items[0]
        task = self.tasks.get(first.task_id)
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
            self.conn.execute(insert(LOGS), lines)
            return ReportResult(201)
        if isinstance(first, ProgressReport):
            record_progress(self.conn, first.task_id, ProgressBody(first.percent, first.message))
        elif isinstance(first, NotifyReport):
            if first.step == "rollback" and task.state in ROLLBACK_FROM:
                # the rollback command's record is not committed yet: the worker sends again
                raise Unavailable(f"task {task.id} is not recorded in rollback yet", 1)
            if first.success and task.state == State.RUNNING and self.last[task.id] == index:
                self.succeeded.append((index, first))
                return ReportResult(200)  # settled below, with the others
            body = NotifyBody(first.success, first.result, first.error)
            applied = notify(
                self.conn, first.task_id, body, actor=self.actor, seen=task, records=self.records
            )
            self.moved.extend(applied.triggers)
        else:
            touch(self.conn, first.task_id, Action.HEARTBEAT)
        return ReportResult(200)

    def finish_succeeded(self, results: list[ReportResult]) -> None:
        """Settle every run that succeeded, in one bulk move (the settle policy's ``succeed``,
        then ``finish`` unless the task waits for its control task); a task that moved
        meanwhile has its item answered with the refusal instead."""
        write_records(self.conn, self.records)
        if not self.succeeded:
            return
        now = utcnow()
        plans = []
        for _, item in self.succeeded:
            task = self.tasks[item.task_id]
            trigger, plan = planned(
                item.task_id,
                task,
                success=True,
                result=item.result,
                now=now,
                seen=item.task_id in self.single,
            )
            assert trigger is Trigger.SUCCEED  # a running task's success (see apply)
            plans.append(plan)
        done = apply_many(self.conn, Trigger.SUCCEED, plans, actor=self.actor, now=now)
        for index, item in self.succeeded:
            outcome = done[item.task_id]
            if isinstance(outcome, TaskError):
                results[index] = _refused(outcome)
            else:
                self.moved.extend(outcome.triggers)


def _refused(exc: TaskError) -> ReportResult:
    return ReportResult(exc.http_status, exc.title, exc.message)


def _log_group(item: Report) -> object:
    """Consecutive log lines of one attempt share a key; every other report is alone."""
    if isinstance(item, LogReport):
        return ("log", item.task_id, item.attempt)
    return id(item)
