"""The Producer: turns timed and permanent triggers into task instances, each fire once.

Exactly once across any number of nodes rests on two things:

* **Ownership.** Triggers are split into :data:`SHARDS` shards by id; a node works on the
  shards whose lease (``producer:<n>``, through the node's lock backend) it holds, renewed
  every pass. A node that dies loses its leases when they expire (``TASK_LEASE_SECONDS``)
  and the next pass of another node takes them: that is the failover time. One node alone
  holds every shard; nodes started together share them as they happen to take them.
* **A unique key.** Each instance carries ``(trigger_id, fire_time)``, unique in the
  database, and is inserted in the same transaction that moves the trigger's
  ``next_fire_time`` on, conditionally on the trigger's version. Two owners (a lease that
  lapsed mid-pass) cannot both commit: the second finds the version moved or the key taken,
  and its transaction creates nothing.

A pass handles the due triggers of its shards in one transaction (a batch's worth of
instances for one commit); should one of them collide, the batch is redone one trigger a
transaction, so the others still fire.

Late and missed times: the rule is :mod:`taskscheduler.triggers.base`'s. As it works, the
owner of a shard marks it watched (``trigger_shards``: since when without a break, and until
when; :class:`~taskscheduler.triggers.watch.ShardWatch`); a node taking a shard over reads
the mark (:func:`~taskscheduler.triggers.base.watch_since`): a failover carries the watch
on, so every fire time of the gap fires; after a downtime the watch starts anew, and the
fire times before it are the misfire policy's (:func:`~taskscheduler.triggers.base.due`).
Retired triggers never fire.

Timed triggers, overlap: ``allow`` fires regardless of earlier instances,
``skip`` drops the fire times that come while an instance is unfinished, ``queue`` keeps
the next fire time waiting until the unfinished instance ends, then fires it (late), one at
a time.

Permanent triggers: one live instance at all times. While it lives the trigger is looked at
every :data:`PERMANENT_CHECK_SECONDS`; once it ended, the next is started at once after a
success, or after a backoff that doubles with each consecutive failure (up to
:data:`MAX_BACKOFF_SECONDS`); ``failures`` counts them and is stored only when the next
instance starts, so looking again never counts one failure twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import IntegrityError

from taskscheduler.db.models import utcnow
from taskscheduler.db.tables import TASKS, TRIGGERS
from taskscheduler.locks import Locks, Ownership
from taskscheduler.queue.wakeup import Wakeup
from taskscheduler.tasks.create import store
from taskscheduler.tasks.store import plain, store_plain
from taskscheduler.triggers.base import due
from taskscheduler.triggers.definitions import schedule_of, template_of
from taskscheduler.triggers.watch import ShardWatch
from taskworker.contract.api import CreateBody
from taskworker.states import Outcome, State

log = logging.getLogger(__name__)
_t = TRIGGERS.c
_c = TASKS.c
#: Shards of the triggers' ids, each owned through a lease of its own.
SHARDS = 8
#: Due triggers handled per pass, in one transaction: a minute's cron triggers, all due in
#: the same second, are created together rather than one batch after another.
BATCH = 10_000
#: How often a permanent trigger with a live instance is looked at.
PERMANENT_CHECK_SECONDS = 1.0
BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 300.0


@dataclass(frozen=True)
class Fire:
    """What one pass does to one trigger: the instances' fire times and what to write."""

    trigger: Any
    fire_times: list[datetime]
    values: dict[str, Any]


class ProducerLoop:
    name = "producer"
    batch = 1  # any work done: look again at once

    def __init__(
        self,
        engine: Engine,
        locks: Locks,
        *,
        node: str,
        lease_seconds: float,
        wakeup: Wakeup | None = None,
    ) -> None:
        self.engine = engine
        self.actor = f"producer:{node}"
        self.shards = [
            Ownership(locks, f"producer:{shard}", node, lease_seconds) for shard in range(SHARDS)
        ]
        self.wakeup = wakeup or Wakeup(None)
        self.watch = ShardWatch(engine, node, lease_seconds)
        #: Instances a collision kept from being created twice (for the logs and tests).
        self.collisions = 0
        #: The fire times of cron triggers computed this pass, shared by those alike.
        self._due: dict[tuple[Any, ...], tuple[list[datetime], datetime | None]] = {}

    def owned(self) -> dict[int, int]:
        """The shards this node holds now, with their leases' tokens."""
        return {
            shard: lease.token
            for shard, lease in enumerate(self.shards)
            if lease.hold() and lease.token is not None
        }

    def tick(self, now: datetime) -> int:
        held = self.owned()
        shards = self.watch.update(held, now) if held else []
        if not shards:
            return 0
        self._due.clear()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(TRIGGERS)
                .where(
                    _t.enabled.is_(True),
                    _t.retired_at.is_(None),
                    _t.next_fire_time <= now,
                    (_t.id % SHARDS).in_(shards),
                )
                .order_by(_t.next_fire_time)
                .limit(BATCH)
            ).all()
            watched = [r.id for r in rows if r.overlap != "allow" or r.kind == "permanent"]
            busy = self._unfinished(conn, watched)
            fires = [fire for row in rows if (fire := self._plan(conn, row, now, busy)) is not None]
            conn.rollback()
        if not fires:
            return 0
        try:
            made = self._write(fires)
        except (IntegrityError, _Moved):
            made = 0
            for fire in fires:  # one collided: the others still fire, each on its own
                try:
                    made += self._write([fire])
                except (IntegrityError, _Moved):
                    self.collisions += 1
                    log.warning("trigger %d: %s fired already", fire.trigger.id, fire.fire_times)
        if made:
            self.wakeup.notify()
        return len(fires)

    def _plan(self, conn: Connection, row: Any, now: datetime, busy: set[int]) -> Fire | None:
        if row.kind == "permanent":
            return self._plan_permanent(conn, row, now, busy)
        since = self.watch.since(row.id % SHARDS)
        # cron triggers alike (a minute's "* * * * *") share one computation per pass
        key = (row.cron, row.timezone, row.next_fire_time, row.misfire, since) if row.cron else None
        if key is None or (found := self._due.get(key)) is None:
            schedule = schedule_of(row)
            assert schedule is not None
            found = due(schedule, row.next_fire_time, now, row.misfire, since)
            if key is not None:
                self._due[key] = found
        fire_times, following = found
        if row.overlap != "allow" and fire_times and row.id in busy:
            if row.overlap == "queue":
                return None  # the fire time waits, due, until the instance ends
            fire_times = []
        elif row.overlap == "queue" and fire_times:
            fire_times = fire_times[:1]  # the oldest time that fires first, one at a time
            queued = schedule_of(row)
            assert queued is not None
            following = queued.next_after(fire_times[0])
        values: dict[str, Any] = {"next_fire_time": following}
        if fire_times:
            values["last_fire_time"] = fire_times[-1]
        return Fire(row, fire_times, values)

    def _plan_permanent(self, conn: Connection, row: Any, now: datetime, busy: set[int]) -> Fire:
        check = {"next_fire_time": now + timedelta(seconds=PERMANENT_CHECK_SECONDS)}
        if row.id in busy:
            return Fire(row, [], check)
        last = conn.execute(
            select(_c.outcome, _c.finished_at)
            .where(_c.trigger_id == row.id)
            .order_by(_c.fire_time.desc())
            .limit(1)
        ).one_or_none()
        failures = 0 if last is None or last.outcome == Outcome.SUCCEEDED else row.failures + 1
        if last is not None and failures:
            backoff = min(MAX_BACKOFF_SECONDS, BACKOFF_SECONDS * 2 ** (failures - 1))
            start_at = (last.finished_at or now) + timedelta(seconds=backoff)
            if start_at > now:
                return Fire(row, [], {"next_fire_time": start_at})
        fire_time = row.next_fire_time
        return Fire(row, [fire_time], {**check, "failures": failures, "last_fire_time": fire_time})

    @staticmethod
    def _unfinished(conn: Connection, trigger_ids: list[int]) -> set[int]:
        """The triggers among these with an instance that has not finished."""
        if not trigger_ids:
            return set()
        return set(
            conn.execute(
                select(_c.trigger_id)
                .where(_c.trigger_id.in_(trigger_ids), _c.state != State.FINISH)
                .distinct()
            ).scalars()
        )

    def _write(self, fires: list[Fire]) -> int:
        """Move the triggers on and insert their instances, in one transaction.

        Triggers moved alike (same new columns, same version read: a minute's cron
        triggers) are moved by one UPDATE; the instances of plain templates are inserted
        together. A trigger another owner moved first fires nothing here: alone, it is
        skipped; within a group, :class:`_Moved` has the caller redo the pass one by one.
        """
        made = 0
        now = utcnow()
        groups: dict[bytes, list[Fire]] = {}
        for fire in fires:
            key = msgspec.json.encode([fire.trigger.version, fire.values], order="sorted")
            groups.setdefault(key, []).append(fire)
        together: list[tuple[str, CreateBody]] = []  # plain instances, inserted in one go
        links: list[dict[str, Any]] = []
        with self.engine.begin() as conn:
            for group in groups.values():
                first = group[0].trigger
                moved = conn.execute(
                    update(TRIGGERS)
                    .where(_t.id.in_([f.trigger.id for f in group]), _t.version == first.version)
                    .values({**group[0].values, "version": first.version + 1, "updated_at": now})
                )
                if moved.rowcount != len(group):
                    if len(group) > 1:
                        raise _Moved
                    continue  # another owner moved it first: it fired what was due
                for fire in group:
                    template = template_of(fire.trigger)
                    task_type = template.create_info.task_type
                    assert task_type is not None
                    for fire_time in fire.fire_times:
                        link = {"trigger_id": fire.trigger.id, "fire_time": fire_time}
                        if plain(template):
                            together.append((task_type, template))
                            links.append(link)
                        else:
                            store(conn, task_type, template, self.actor, link=link)
                            made += 1
            made += len(store_plain(conn, together, self.actor, links=links))
        return made


class _Moved(Exception):
    """Some trigger of a group was moved by another owner meanwhile."""
