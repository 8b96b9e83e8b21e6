"""The schedule interface, and the misfire rule: which missed fire times still fire.

Every time here is an aware datetime; schedules take and return UTC, and each one does its
own time-zone arithmetic, so that a cron trigger in Europe/Berlin fires at 02:30 local time
on both sides of a daylight-saving change (see :mod:`taskscheduler.triggers.cron`).

**Late and missed times** — the one rule, in two functions:

* :func:`watch_since` tells a failover from a downtime by what the nodes know, not by how
  late a fire time is. The Producer owns its shards of triggers through leases, and the
  owner of a shard marks it watched (``trigger_shards.watched_until``) as it works. A node
  that takes a shard whose last owner watched it within two lease periods of the takeover
  (that owner's lease ran out less than a lease period ago: a kill -9, a lost machine, a
  rolling restart) takes over an unbroken watch, and the watch keeps the time it began. A
  shard never watched, or watched by nobody for longer (every node was down), begins a new
  watch at the takeover: the time between was downtime. The owner holds its own passes to
  the same rule: one that did not look for longer (stalled, suspended, cut off from the
  database) begins a new watch too, lease or not.
* :func:`due` splits a trigger's due fire times at the start of its shard's watch. Those
  at or after it were due while some node watched — a slow pass, a failover, a time held
  back by ``overlap: queue`` — and all fire, whatever the policy. Those before it were
  missed by downtime: ``fire_once`` fires the first of them, once, late; ``skip`` none.
  How long the downtime lasted changes neither. The first rather than the latest: its fire
  time lies in the downtime, so the catch-up is told from the instances that fired on time
  after it (the latest missed time may fall during the restarted node's own start-up, a
  moment before the next one fires on time).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from typing import Literal

Misfire = Literal["fire_once", "skip"]
#: At most this many on-time fire times are created for one trigger in one pass; the rest
#: stay due, and the next pass carries on from them.
MAX_FIRES_PER_PASS = 1000
#: A takeover within this many lease periods of the last owner's last mark is a failover.
FAILOVER_LEASES = 2


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


def watch_since(
    since: datetime | None,
    watched_until: datetime | None,
    taken_at: datetime,
    lease_seconds: float,
) -> datetime:
    """When the unbroken watch of a shard began, for the node looking at it at ``taken_at``.

    ``since`` and ``watched_until`` are what the shard's last owner recorded (None for a
    shard nobody ever watched), or what this node noted at its own previous pass. When the
    shard was watched within :data:`FAILOVER_LEASES` lease periods of ``taken_at`` — the
    last owner's lease, renewed as it worked, expired less than a lease period before the
    takeover — this is a failover and the watch goes on from ``since``: every fire time of
    the gap still fires. Otherwise nobody watched the shard for longer than a lease period:
    the watch begins now, and what fell due before was missed.
    """
    if since is None or watched_until is None:
        return taken_at
    if taken_at - watched_until <= timedelta(seconds=FAILOVER_LEASES * lease_seconds):
        return since
    return taken_at


def due(
    schedule: Schedule,
    next_fire: datetime,
    now: datetime,
    misfire: Misfire,
    watched_since: datetime,
) -> tuple[list[datetime], datetime | None]:
    """The fire times to create now, oldest first, and the trigger's next fire time after them.

    Fire times up to ``now`` are due. Those at or after ``watched_since`` (the start of the
    shard's watch, :func:`watch_since`) fell due while a node watched — late only because of
    a slow pass or a failover — and all fire, under either policy (up to
    :data:`MAX_FIRES_PER_PASS`; the next fire time is then the first one left). Those before
    it were missed by downtime: ``fire_once`` creates the first of them (late), one
    catch-up instance however long the downtime, ``skip`` none.
    """
    fires: list[datetime] = []
    cursor: datetime | None = next_fire
    if misfire == "fire_once" and next_fire < watched_since and next_fire <= now:
        fires.append(next_fire)  # the catch-up: the first time missed
    while cursor is not None and cursor <= now:
        if cursor >= watched_since:
            if len(fires) >= MAX_FIRES_PER_PASS:
                break  # still due: the next pass carries on from here
            fires.append(cursor)
        cursor = schedule.next_after(cursor)
    return fires, cursor
