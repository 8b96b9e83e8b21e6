"""A trigger as the API shows it: its definition, schedule state and next fire times."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import Row


class TriggerView(msgspec.Struct, kw_only=True):
    """A trigger as stored; ``next_fire_times`` only on ``GET /v1/triggers/{id}``.

    ``retired_at``: when ``DELETE`` retired it (it fires no more; null while it lives)."""

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
    retired_at: datetime | None = None
    next_fire_times: list[datetime] | None = None


class TriggerPage(msgspec.Struct):
    """One page of triggers, oldest first; pass ``next_cursor`` back as ``cursor``."""

    items: list[TriggerView]
    next_cursor: int | None


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
        retired_at=row.retired_at,
        next_fire_times=next_fire_times,
    )
