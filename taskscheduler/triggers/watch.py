"""The Producer's watch over its shards of triggers, as the database keeps it.

Which missed fire times fire is decided in :mod:`taskscheduler.triggers.base`, from when the
watch over a trigger's shard began. This module keeps what that needs: one row per shard in
``trigger_shards`` (its last holder, since when some node has watched it without a break,
and until when), written by the shard's owner as it works, and read by the next owner when
it takes the shard. The rows live in the database, not in the lock backend, because the
question is asked when the lease is gone: after a kill -9, or after every node was down.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from taskscheduler.db.tables import TRIGGER_SHARDS
from taskscheduler.triggers.base import FAILOVER_LEASES, watch_since

log = logging.getLogger(__name__)
_s = TRIGGER_SHARDS.c
#: The owner marks its shards at most this often (and at least every third of a lease).
MARK_SECONDS = 1.0


class ShardWatch:
    """One node's view of the shards it holds: since when each has been watched.

    :meth:`update` is called at the start of every Producer pass with the shards held and
    their lease tokens. A shard held under a token not seen before has just been taken (by
    this node, from whoever held it): its row is read and its watch decided by
    :func:`~taskscheduler.triggers.base.watch_since`. A shard held all along is judged by
    the same rule against this node's own previous pass: a node that did not look for more
    than two lease periods (stalled, suspended, cut off from the database) watched nothing
    meanwhile, lease or not. Every shard held is marked watched up to now at most every
    :attr:`every` seconds, so that the mark a dead owner leaves lags its lease by less than a
    third of it.
    """

    def __init__(self, engine: Engine, node: str, lease_seconds: float) -> None:
        self.engine = engine
        self.node = node
        self.lease_seconds = lease_seconds
        self.every = timedelta(seconds=min(MARK_SECONDS, lease_seconds / 3))
        self._since: dict[int, datetime] = {}
        self._seen: dict[int, datetime] = {}
        self._tokens: dict[int, int] = {}
        self._marked: datetime | None = None

    def since(self, shard: int) -> datetime:
        """When the watch over ``shard`` began (a shard :meth:`update` returned)."""
        return self._since[shard]

    def update(self, held: dict[int, int], now: datetime) -> list[int]:
        """Take note of the shards held now (shard → lease token); the ones whose watch is
        known, which a pass may fire. A shard whose row could not be written this time
        (another node wrote it at the same moment) is left for the next pass."""
        for shard in [s for s in self._tokens if s not in held]:
            del self._tokens[shard]  # lost: taking it again is a takeover again
        taken = [shard for shard, token in held.items() if self._tokens.get(shard) != token]
        broken = {
            shard: since
            for shard in held
            if shard not in taken
            and (
                since := watch_since(self._since[shard], self._seen[shard], now, self.lease_seconds)
            )
            != self._since[shard]
        }
        pending: set[int] = set()
        if taken or broken:
            try:
                self._write(taken, broken, list(held), now)
            except IntegrityError:
                log.warning("shards %s: another node wrote their watch meanwhile", taken)
                pending = {*taken, *broken}
            else:
                self._tokens.update({shard: held[shard] for shard in taken})
        elif self._marked is None or now - self._marked >= self.every:
            with self.engine.begin() as conn:
                conn.execute(
                    update(TRIGGER_SHARDS)
                    .where(_s.shard.in_(list(held)))
                    .values(holder=self.node, watched_until=now)
                )
            self._marked = now
        ready = [shard for shard in held if shard in self._tokens and shard not in pending]
        self._seen.update(dict.fromkeys(ready, now))
        return ready

    def _write(
        self, taken: list[int], broken: dict[int, datetime], held: list[int], now: datetime
    ) -> None:
        """Decide the watch of the shards just taken, write theirs and the broken ones', and
        mark every shard held."""
        found = dict(broken)
        with self.engine.begin() as conn:
            rows = {
                row.shard: row
                for row in conn.execute(select(TRIGGER_SHARDS).where(_s.shard.in_(taken)))
            }
            for shard in [*taken, *broken]:
                row = rows.get(shard)
                if shard in taken:
                    found[shard] = watch_since(
                        row.watched_since if row else None,
                        row.watched_until if row else None,
                        now,
                        self.lease_seconds,
                    )
                values = {"holder": self.node, "watched_since": found[shard], "watched_until": now}
                if shard in taken and row is None:
                    conn.execute(insert(TRIGGER_SHARDS).values(shard=shard, **values))
                else:
                    conn.execute(update(TRIGGER_SHARDS).where(_s.shard == shard).values(values))
                if found[shard] == now and (row is not None or shard in broken):
                    log.info(
                        "shard %d: not watched for more than %g lease periods: the fire times "
                        "missed meanwhile follow their misfire policy",
                        shard,
                        FAILOVER_LEASES,
                    )
            kept = [shard for shard in held if shard not in found]
            if kept:
                conn.execute(
                    update(TRIGGER_SHARDS)
                    .where(_s.shard.in_(kept))
                    .values(holder=self.node, watched_until=now)
                )
        self._since.update(found)
        self._marked = now
