"""Cron expressions, evaluated in the trigger's own time zone (cronsim).

Five fields (minute hour day month weekday) or six, with seconds first. The expression is
read as wall-clock time in the trigger's zone, so "30 2 * * *" in Europe/Berlin means 02:30
Berlin time in winter and in summer. Across daylight-saving changes it behaves like Debian's
cron (cronsim's documented choice): on the spring-forward day a time that does not exist
fires at the first instant after the gap (03:00), and on the fall-back day a repeated time
fires once, at its first occurrence — never twice, never skipped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from taskscheduler.triggers.base import Schedule
from taskworker.errors import InvalidInput


class CronSchedule(Schedule):
    def __init__(self, expression: str, timezone: str = "UTC") -> None:
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput("timezone", f"unknown time zone {timezone!r}") from None
        if len(expression.split()) not in (5, 6):
            raise InvalidInput("cron", "a cron expression has 5 or 6 fields")
        try:
            next(CronSim(expression, datetime.now(self.zone)))
        except CronSimError as exc:
            raise InvalidInput("cron", f"{expression!r}: {exc}") from None
        except StopIteration:
            raise InvalidInput("cron", f"{expression!r} never fires") from None
        self.expression = expression

    def next_after(self, after: datetime) -> datetime | None:
        local = after.astimezone(self.zone)
        try:
            found = next(CronSim(self.expression, local))
        except (StopIteration, OverflowError):  # never again, or not before year 9999 ends
            return None
        return found.astimezone(UTC)
