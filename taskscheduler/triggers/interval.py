"""A fixed interval, counted from an anchor (the trigger's creation, or a given start).

Fire times are ``anchor + k * interval``: computed, not accumulated, so they never drift
however late a pass runs, and every node computes the same times — which the unique key on
(trigger, fire time) relies on.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from taskscheduler.triggers.base import Schedule
from taskworker.errors import InvalidInput

#: Shorter intervals would turn the Producer into a busy loop.
MIN_INTERVAL_SECONDS = 1.0


class IntervalSchedule(Schedule):
    def __init__(self, seconds: float, anchor: datetime) -> None:
        if not seconds >= MIN_INTERVAL_SECONDS:
            raise InvalidInput("interval_second", f"must be at least {MIN_INTERVAL_SECONDS} s")
        if anchor.tzinfo is None:
            raise InvalidInput("interval_second", "the anchor time needs a time zone")
        self.step = timedelta(seconds=seconds)
        self.anchor = anchor.astimezone(UTC)

    def next_after(self, after: datetime) -> datetime:
        if after < self.anchor:
            return self.anchor
        steps = math.floor((after - self.anchor) / self.step) + 1
        return self.anchor + steps * self.step
