"""A fixed interval, counted from an anchor (the trigger's creation, or a given start).

Fire times are ``anchor + k * interval``: computed, not accumulated, so they never drift
however late a pass runs, and every node computes the same times — which the unique key on
(trigger, fire time) relies on. An interval lies between 1 s and 366 days (shorter would
make the Producer a busy loop, longer is a typo); a fire time past the last a datetime can
hold means the schedule is over.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from taskscheduler.triggers.base import Schedule
from taskworker.contract.fields import MAX_SECONDS, MIN_INTERVAL_SECONDS
from taskworker.errors import InvalidInput


class IntervalSchedule(Schedule):
    def __init__(self, seconds: float, anchor: datetime) -> None:
        if not MIN_INTERVAL_SECONDS <= seconds <= MAX_SECONDS:
            raise InvalidInput(
                "interval_second", f"must be from {MIN_INTERVAL_SECONDS} to {MAX_SECONDS} s"
            )
        if anchor.tzinfo is None:
            raise InvalidInput("interval_second", "the anchor time needs a time zone")
        self.step = timedelta(seconds=seconds)
        self.anchor = anchor.astimezone(UTC)

    def next_after(self, after: datetime) -> datetime | None:
        if after < self.anchor:
            return self.anchor
        steps = math.floor((after - self.anchor) / self.step) + 1
        try:
            return self.anchor + steps * self.step
        except OverflowError:  # past year 9999: no fire time is left
            return None
