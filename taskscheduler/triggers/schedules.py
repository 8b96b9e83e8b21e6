"""Which :class:`~taskscheduler.triggers.base.Schedule` a trigger definition describes.

The one place that knows every kind of schedule, so the interface (:mod:`.base`) and the
kinds (:mod:`.cron`, :mod:`.interval`, :mod:`.dates`) need not know each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from taskscheduler.triggers.base import Schedule
from taskscheduler.triggers.cron import CronSchedule
from taskscheduler.triggers.dates import DateList
from taskscheduler.triggers.interval import IntervalSchedule
from taskworker.errors import InvalidInput


def schedule_for(
    *,
    cron: str | None = None,
    interval_second: float | None = None,
    times: Sequence[str] | None = None,
    timezone: str | None = None,
    anchor: datetime | None = None,
) -> Schedule:
    """The schedule a trigger definition describes: exactly one of cron, interval, times."""
    given = [
        name
        for name, value in (("cron", cron), ("interval_second", interval_second), ("times", times))
        if value is not None
    ]
    if len(given) != 1:
        raise InvalidInput("cron", "give exactly one of cron, interval_second, times")
    if cron is not None:
        return CronSchedule(cron, timezone or "UTC")
    if interval_second is not None:
        if anchor is None:
            raise InvalidInput("interval_second", "an interval needs an anchor time")
        return IntervalSchedule(interval_second, anchor)
    return DateList(times or [])
