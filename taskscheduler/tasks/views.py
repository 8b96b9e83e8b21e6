"""Response shapes of the scheduler's own resources, and stored rows turned into them.

The task itself is :class:`taskworker.contract.api.TaskView` (shared with workers); the shapes
here exist only on the scheduler: pages, logs, workers, types, health. Rows come from Core
selects (attribute access by column name), which is what the API and the loops read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any

import msgspec
from sqlalchemy import JSON, ColumnElement, Row

from taskscheduler.db.json_sql import embedded_json, iso_utc, json_object
from taskscheduler.db.models import UTCDateTime
from taskscheduler.db.tables import TASKS
from taskworker.contract.api import Progress, TaskView, TransitionView

_c = TASKS.c


class CreatedView(TaskView, kw_only=True):
    """The create response: the task plus the token that authorises ``notify`` on it alone.

    ``notify_token`` is null when no ``TASK_WORKER_SECRET`` is configured to derive it from.
    """

    notify_token: str | None = None


class TopologyView(CreatedView, kw_only=True):
    """``POST /v1/topology``: the control task, and its children's ids by node key."""

    children: dict[str, int]


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


#: A :class:`TaskView`'s fields and the task's columns they show, in the order
#: :func:`task_views` reads a row.
_VIEW: tuple[tuple[str, str], ...] = (
    ("task_id", "id"),
    ("task_type", "task_type"),
    ("task_name", "task_name"),
    ("task_status", "state"),
    ("outcome", "outcome"),
    ("important_level", "important_level"),
    ("parent_task_id", "parent_task_id"),
    ("control_task_id", "control_task_id"),
    ("params", "params"),
    ("result", "result"),
    ("error", "error"),
    ("retry_count", "retry_count"),
    ("max_retry", "max_retry"),
    ("attempt", "attempt"),
    ("progress_percent", "progress_percent"),
    ("progress_message", "progress_message"),
    ("worker", "worker"),
    ("created_at", "created_at"),
    ("updated_at", "updated_at"),
    ("http_url", "http_url"),
    ("callback_url", "callback_url"),
    ("idempotency_key", "idempotency_key"),
    ("resources", "resources"),
    ("targets", "targets"),
    ("strategy", "strategy"),
    ("max_parallel", "max_parallel"),
    ("start_time", "start_time"),
    ("deadline_second", "deadline_second"),
    ("lock_timeout", "lock_timeout"),
    ("paused_from", "paused_from"),
    ("heartbeat_at", "heartbeat_at"),
    ("started_at", "started_at"),
    ("finished_at", "finished_at"),
    ("trigger_id", "trigger_id"),
    ("fire_time", "fire_time"),
    ("kind", "kind"),
    ("node_key", "node_key"),
    ("target", "target"),
    ("reverts_task_id", "reverts_task_id"),
)
_VIEW_FIELDS = tuple(field for field, _ in _VIEW)
#: A whole task row's values in the order of :data:`_VIEW`, read by name.
_view_values = attrgetter(*(column for _, column in _VIEW))


def _rendered(column: str) -> ColumnElement[Any]:
    found = _c[column]
    if isinstance(found.type, UTCDateTime):
        return iso_utc(found)
    if isinstance(found.type, JSON):
        return embedded_json(found)
    return found


def _view_pairs() -> list[tuple[str, ColumnElement[Any]]]:
    pairs = []
    for field, column in _VIEW:
        if field == "progress_percent":
            progress = [("percent", _rendered(column)), ("message", _c.progress_message)]
            pairs.append(("progress", json_object(progress)))
        elif field != "progress_message":
            pairs.append((field, _rendered(column)))
    return pairs


#: What a list selects: each task as its :class:`TaskView` JSON, built by the database
#: (:mod:`taskscheduler.db.json_sql`), one string a row for :func:`task_views` to decode.
TASK_VIEW_JSON = json_object(_view_pairs()).label("view")
_decode_view = msgspec.json.Decoder(TaskView).decode


def task_view(row: Row[Any]) -> TaskView:
    """A task read whole (``select(TASKS)``, ``RETURNING`` every column)."""
    return TaskView(**_task_fields(_view_values(row)))


def task_views(rows: Iterable[Sequence[Any]]) -> list[TaskView]:
    """Rows selected as :data:`TASK_VIEW_JSON`."""
    return [_decode_view(row[0]) for row in rows]


def created_view(row: Row[Any], notify_token: str | None) -> CreatedView:
    return CreatedView(**_task_fields(_view_values(row)), notify_token=notify_token)


def _task_fields(values: Sequence[Any]) -> dict[str, Any]:
    fields = dict(zip(_VIEW_FIELDS, values, strict=True))
    fields["progress"] = Progress(fields.pop("progress_percent"), fields.pop("progress_message"))
    fields["params"] = fields["params"] or {}
    fields["resources"] = fields["resources"] or []
    return fields


def topology_view(
    row: Row[Any], notify_token: str | None, children: dict[str, int]
) -> TopologyView:
    return TopologyView(
        **_task_fields(_view_values(row)), notify_token=notify_token, children=children
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
