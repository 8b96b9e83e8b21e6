"""An explicit list of times (ISO 8601 with an offset), each fired once.

A time is stored in UTC, so it must have a UTC value: its year lies within the years every
time on the wire is held to (:data:`taskworker.contract.fields.FIRST_YEAR` to ``LAST_YEAR``).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import UTC, datetime

from taskscheduler.triggers.base import Schedule
from taskworker.contract.fields import FIRST_YEAR, LAST_YEAR
from taskworker.errors import InvalidInput


class DateList(Schedule):
    def __init__(self, times: Sequence[str]) -> None:
        if not times:
            raise InvalidInput("times", "give at least one time")
        parsed: list[datetime] = []
        for index, text in enumerate(times):
            try:
                moment = datetime.fromisoformat(text)
            except (TypeError, ValueError):
                raise InvalidInput(f"times[{index}]", f"{text!r} is not ISO 8601") from None
            if moment.tzinfo is None:
                raise InvalidInput(f"times[{index}]", f"{text!r} has no time zone offset")
            if not FIRST_YEAR <= moment.year <= LAST_YEAR:
                raise InvalidInput(
                    f"times[{index}]", f"must lie in the years {FIRST_YEAR:04d} to {LAST_YEAR}"
                )
            parsed.append(moment.astimezone(UTC))
        self.times = sorted(set(parsed))

    def next_after(self, after: datetime) -> datetime | None:
        index = bisect.bisect_right(self.times, after)
        return self.times[index] if index < len(self.times) else None
