"""Workers and the task types they serve, as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import Row

from taskworker.contract.worker import TypeSpec


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
