"""Response shapes of the scheduler's own resources, and stored rows turned into them.

The task itself is :class:`taskworker.contract.TaskView` (shared with workers); the shapes
here exist only on the scheduler: pages, logs, workers, types, health. Rows come from Core
selects (attribute access by column name), which is what the API and the loops read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import Row

from taskworker.contract import Progress, TaskView, TransitionView, TypeSpec


class CreatedView(TaskView, kw_only=True):
    """The create response: the task plus the token that authorises ``notify`` on it alone.

    ``notify_token`` is null when no ``TASK_WORKER_SECRET`` is configured to derive it from.
    """

    notify_token: str | None = None


class TopologyView(CreatedView, kw_only=True):
    """``POST /v1/topology``: the control task, and its children's ids by node key."""

    children: dict[str, int]


class TriggerView(msgspec.Struct, kw_only=True):
    """A trigger as stored; ``next_fire_times`` only on ``GET /v1/triggers/{id}``."""

    trigger_id: int
    name: str
    kind: str
    cron: str | None
    interval_second: float | None
    times: list[str] | None
    timezone: str
    overlap: str
    misfire: str
    enabled: bool
    template: dict[str, Any]
    next_fire_time: datetime | None
    last_fire_time: datetime | None
    failures: int
    created_at: datetime
    updated_at: datetime
    next_fire_times: list[datetime] | None = None


class TriggerPage(msgspec.Struct):
    """One page of triggers, oldest first; pass ``next_cursor`` back as ``cursor``."""

    items: list[TriggerView]
    next_cursor: int | None


class CreatedBatch(msgspec.Struct):
    """The batch create response: one created (or, by idempotency key, found) task per item,
    in the order they were sent."""

    tasks: list[CreatedView]


class TaskPage(msgspec.Struct):
    """One page of tasks; pass ``next_cursor`` back as ``cursor`` for the next (null: done)."""

    items: list[TaskView]
    next_cursor: int | None


class SummaryView(msgspec.Struct):
    """``action=summary``: what the task produced so far, and the plugin's own summary."""

    task_id: int
    task_status: str
    outcome: str | None
    progress: Progress
    result: Any
    error: Any
    attempt: int
    retry_count: int
    #: From the worker running the task; null when it is on no worker.
    plugin: Any = None


class HeartbeatView(msgspec.Struct):
    task_id: int
    heartbeat_at: datetime | None
    worker: str | None


class LogView(msgspec.Struct):
    id: int
    at: datetime
    level: str
    message: str
    attempt: int


class LogPage(msgspec.Struct):
    """Lines after ``after``, oldest first; poll again with ``after=next_after`` to follow."""

    items: list[LogView]
    next_after: int


class Appended(msgspec.Struct):
    appended: int


class WorkerView(msgspec.Struct):
    name: str
    url: str
    capacity: int
    running: int
    status: str
    task_types: list[str]
    heartbeat_at: datetime
    registered_at: datetime


class TypeView(TypeSpec, kw_only=True):
    """A task type, its params schema, and the workers that serve it."""

    task_type: str
    workers: list[str] = []


class Health(msgspec.Struct):
    status: str
    database: str


def task_view(row: Row[Any]) -> TaskView:
    return TaskView(**_task_fields(row))


def created_view(row: Row[Any], notify_token: str | None) -> CreatedView:
    return CreatedView(**_task_fields(row), notify_token=notify_token)


def _task_fields(row: Row[Any]) -> dict[str, Any]:
    return {
        "task_id": row.id,
        "task_type": row.task_type,
        "task_name": row.task_name,
        "task_status": row.state,
        "outcome": row.outcome,
        "important_level": row.important_level,
        "parent_task_id": row.parent_task_id,
        "control_task_id": row.control_task_id,
        "params": row.params or {},
        "result": row.result,
        "error": row.error,
        "retry_count": row.retry_count,
        "max_retry": row.max_retry,
        "attempt": row.attempt,
        "progress": Progress(row.progress_percent, row.progress_message),
        "worker": row.worker,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "http_url": row.http_url,
        "callback_url": row.callback_url,
        "idempotency_key": row.idempotency_key,
        "resources": row.resources or [],
        "targets": row.targets,
        "strategy": row.strategy,
        "max_parallel": row.max_parallel,
        "start_time": row.start_time,
        "deadline_second": row.deadline_second,
        "lock_timeout": row.lock_timeout,
        "paused_from": row.paused_from,
        "heartbeat_at": row.heartbeat_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "trigger_id": row.trigger_id,
        "fire_time": row.fire_time,
        "kind": row.kind,
        "node_key": row.node_key,
        "target": row.target,
    }


def topology_view(
    row: Row[Any], notify_token: str | None, children: dict[str, int]
) -> TopologyView:
    return TopologyView(**_task_fields(row), notify_token=notify_token, children=children)


def trigger_view(row: Row[Any], next_fire_times: list[datetime] | None = None) -> TriggerView:
    return TriggerView(
        trigger_id=row.id,
        name=row.name,
        kind=row.kind,
        cron=row.cron,
        interval_second=row.interval_second,
        times=row.times,
        timezone=row.timezone,
        overlap=row.overlap,
        misfire=row.misfire,
        enabled=row.enabled,
        template=row.template,
        next_fire_time=row.next_fire_time,
        last_fire_time=row.last_fire_time,
        failures=row.failures,
        created_at=row.created_at,
        updated_at=row.updated_at,
        next_fire_times=next_fire_times,
    )


def transition_view(row: Row[Any]) -> TransitionView:
    return TransitionView(
        from_state=row.from_state,
        to_state=row.to_state,
        trigger=row.trigger,
        actor=row.actor,
        at=row.at,
        reason=row.reason,
        attempt=row.attempt,
    )


def log_view(row: Row[Any]) -> LogView:
    return LogView(id=row.id, at=row.at, level=row.level, message=row.message, attempt=row.attempt)


def worker_view(row: Row[Any]) -> WorkerView:
    return WorkerView(
        name=row.name,
        url=row.url,
        capacity=row.capacity,
        running=row.running,
        status=row.status,
        task_types=sorted(row.task_types or {}),
        heartbeat_at=row.heartbeat_at,
        registered_at=row.registered_at,
    )
