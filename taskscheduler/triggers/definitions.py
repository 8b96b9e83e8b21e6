"""``/v1/triggers``: timed and permanent task definitions, checked whole before they are stored.

Triggers are never erased: ``DELETE`` retires one (:meth:`TriggerDefinitions.retire`). It
fires no more, leaves the list unless retired ones are asked for, and can no longer be
paused or resumed; its instances keep their ``trigger_id``, and its id is never given to
another trigger (AUTOINCREMENT on SQLite; MariaDB never reuses one). It keeps its name too.

A trigger's template is checked exactly as a create of its type would be, by the caller
who defines it (the type is registered, a privileged type needs the admin role, the params
satisfy its schema), so an instance the Producer makes later is a task the API would have
accepted from that caller; the instances themselves are not checked again.

A timed trigger's schedule is built once here, which refuses a bad cron expression, time
zone, interval or time list naming the field, and gives the first fire time after now; an
interval counts from the trigger's creation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from sqlalchemy import Engine, Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from taskscheduler.db.engine import reading
from taskscheduler.db.models import utcnow
from taskscheduler.db.tables import TRIGGERS
from taskscheduler.tasks.create import TaskCreator
from taskscheduler.triggers.base import Schedule
from taskscheduler.triggers.schedules import schedule_for
from taskscheduler.triggers.views import TriggerPage, TriggerView, trigger_view
from taskworker.contract.api import CreateBody, TriggerBody
from taskworker.errors import Conflict, InvalidInput, NotFound

_t = TRIGGERS.c
#: How many next fire times ``GET /v1/triggers/{id}`` gives at most.
MAX_NEXT = 100


def schedule_of(row: Any) -> Schedule | None:
    """A stored timed trigger's schedule (None for a permanent one); an interval counts from
    the trigger's creation, so every node computes the same fire times."""
    if row.kind != "timed":
        return None
    return schedule_for(
        cron=row.cron,
        interval_second=row.interval_second,
        times=row.times,
        timezone=row.timezone,
        anchor=row.created_at,
    )


def template_of(row: Any) -> CreateBody:
    return msgspec.convert(row.template, CreateBody)


class TriggerDefinitions:
    def __init__(self, engine: Engine, tasks: TaskCreator) -> None:
        self._engine = engine
        self._tasks = tasks

    def create(self, body: TriggerBody, *, role: str | None) -> TriggerView:
        """Store the definition, checked whole with the caller's ``role``."""
        now = utcnow()
        first = self._check(body, now, role)
        values = {
            **msgspec.structs.asdict(body),
            "template": msgspec.to_builtins(body.template),
            "next_fire_time": first,
            "failures": 0,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self._engine.begin() as conn:
                trigger_id = conn.execute(insert(TRIGGERS).values(values)).inserted_primary_key
                assert trigger_id is not None
                row = conn.execute(select(TRIGGERS).where(_t.id == trigger_id[0])).one()
        except IntegrityError:
            raise Conflict(
                f"a trigger named {body.name!r} exists already (a retired one keeps its name)"
            ) from None
        return trigger_view(row)

    def page(self, limit: int, cursor: int | None, *, retired: bool = False) -> TriggerPage:
        """A page of triggers, oldest first; the retired ones only when ``retired``."""
        query = select(TRIGGERS).order_by(_t.id).limit(limit + 1)
        if cursor is not None:
            query = query.where(_t.id > cursor)
        if not retired:
            query = query.where(_t.retired_at.is_(None))
        with reading(self._engine) as conn:
            rows = conn.execute(query).all()
        more = len(rows) > limit
        items = [trigger_view(row) for row in rows[:limit]]
        return TriggerPage(items, items[-1].trigger_id if more else None)

    def get(self, trigger_id: int, upcoming: int = 5) -> TriggerView:
        row = self._row(trigger_id)
        schedule = schedule_of(row)
        times: list[datetime] = []
        if schedule is not None and row.enabled and row.retired_at is None:
            after = row.next_fire_time
            times = [after, *schedule.upcoming(after, upcoming - 1)] if after else []
        return trigger_view(row, times[:upcoming])

    def retire(self, trigger_id: int) -> None:
        """Retire the trigger: it fires no more, and everything it made stays linked to it.

        One row is written, however many instances the trigger made. Its version moves on,
        so a Producer pass that read it before cannot fire it after. Retiring a retired
        trigger changes nothing (it keeps the time it was first retired).
        """
        self._row(trigger_id)
        now = utcnow()
        with self._engine.begin() as conn:
            conn.execute(
                update(TRIGGERS)
                .where(_t.id == trigger_id, _t.retired_at.is_(None))
                .values(
                    retired_at=now,
                    enabled=False,
                    next_fire_time=None,
                    version=_t.version + 1,
                    updated_at=now,
                )
            )

    def set_enabled(self, trigger_id: int, enabled: bool) -> TriggerView:
        """Pause or resume. A resumed trigger fires next at its first time after now: what it
        would have fired while paused was not missed, it was not wanted. A retired trigger
        is neither (409), even when retired while this ran."""
        row = self._row(trigger_id)
        now = utcnow()
        schedule = schedule_of(row)
        following = schedule.next_after(now) if schedule is not None else now
        values: dict[str, Any] = {"enabled": enabled, "updated_at": now, "version": _t.version + 1}
        if enabled and not row.enabled:
            values["next_fire_time"] = following
        with self._engine.begin() as conn:
            changed = conn.execute(
                update(TRIGGERS).where(_t.id == trigger_id, _t.retired_at.is_(None)).values(values)
            ).rowcount
            row = conn.execute(select(TRIGGERS).where(_t.id == trigger_id)).one()
        if not changed:
            raise Conflict(f"trigger {trigger_id} was retired at {row.retired_at.isoformat()}")
        return trigger_view(row)

    def _row(self, trigger_id: int) -> Row[Any]:
        with reading(self._engine) as conn:
            row = conn.execute(select(TRIGGERS).where(_t.id == trigger_id)).one_or_none()
        if row is None:
            raise NotFound("trigger", trigger_id)
        return row

    def _check(self, body: TriggerBody, now: datetime, role: str | None) -> datetime | None:
        """Everything that makes a trigger acceptable; its first fire time."""
        info = body.template.create_info
        if info.task_type is None:
            raise InvalidInput("template.create_info.task_type", "is required")
        if info.idempotency_key is not None:
            raise InvalidInput(
                "template.create_info.idempotency_key", "would make every instance the same task"
            )
        try:
            self._tasks.check(info.task_type, body.template, role=role)
        except NotFound as exc:
            raise InvalidInput("template.create_info.task_type", str(exc)) from None
        except InvalidInput as exc:
            raise exc.within("template") from None
        try:
            ZoneInfo(body.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput("timezone", f"unknown time zone {body.timezone!r}") from None
        if body.kind == "permanent":
            for field in ("cron", "interval_second", "times"):
                if getattr(body, field) is not None:
                    raise InvalidInput(field, "a permanent trigger has no schedule")
            return now
        schedule = schedule_for(
            cron=body.cron,
            interval_second=body.interval_second,
            times=body.times,
            timezone=body.timezone,
            anchor=now,
        )
        first = schedule.next_after(now)
        if first is None:
            raise InvalidInput("times", "every time is in the past")
        return first
