"""The schedule interface, the factory from a trigger definition, and the misfire rule.

Every time here is an aware datetime; schedules take and return UTC, and each one does its
own time-zone arithmetic, so that a cron trigger in Europe/Berlin fires at 02:30 local time
on both sides of a daylight-saving change (see :mod:`taskscheduler.triggers.cron`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from typing import Literal

Misfire = Literal["fire_once", "skip"]
#: A fire time missed by less than this still fires under ``skip`` (a slow pass, not downtime).
SKIP_GRACE = timedelta(seconds=60)
#: At most this many fire times are created for one trigger in one pass.
MAX_FIRES_PER_PASS = 1000


class Schedule(ABC):
    """The fire times of one trigger."""

    @abstractmethod
    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after ``after`` (aware), in UTC; None once exhausted."""

    def upcoming(self, after: datetime, count: int) -> list[datetime]:
        """The next ``count`` fire times after ``after`` (for ``/v1/triggers/{id}``)."""
        times: list[datetime] = []
        cursor: datetime | None = after
        while len(times) < count:
            cursor = self.next_after(cursor) if cursor is not None else None
            if cursor is None:
                break
            times.append(cursor)
        return times


def due(
    schedule: Schedule, next_fire: datetime, now: datetime, misfire: Misfire
) -> tuple[list[datetime], datetime | None]:
    """The fire times to create now, and the trigger's next fire time after them.

    Fire times up to ``now`` are due. Those missed by less than :data:`SKIP_GRACE` — a slow
    pass, or a node's failover within its lease time — all fire, under either policy. Older
    ones were missed by downtime: ``fire_once`` creates the latest of them (late) when no
    recent one fires anyway, ``skip`` none. Either way the trigger then waits for its first
    fire time after ``now``.
    """
    missed: list[datetime] = []
    cursor: datetime | None = next_fire
    while cursor is not None and cursor <= now and len(missed) < MAX_FIRES_PER_PASS:
        missed.append(cursor)
        cursor = schedule.next_after(cursor)
    fires = [t for t in missed if now - t <= SKIP_GRACE]
    if not fires and misfire == "fire_once":
        fires = missed[-1:]
    while cursor is not None and cursor <= now:
        cursor = schedule.next_after(cursor)
    return fires, cursor
