"""The Redis queue: one Stream per priority level, read through one consumer group.

Why Streams with a consumer group (and not lists or a sorted set):

- ``XREADGROUP`` hands an entry to exactly one consumer (a node) and keeps it in that
  consumer's pending list until ``XACK``: an item being handled is never lost when the node
  dies, and the server itself tracks how long each entry has been pending.
- ``XAUTOCLAIM`` moves entries pending longer than the redelivery timeout to the caller in
  one atomic command: a dead node's items come back without a janitor process, a heartbeat
  key per node, or a Lua script of our own (an ``LMOVE`` list needs all three).
- ``XPENDING``/``XINFO`` show an operator what is in flight, on which node, how many times
  delivered.
- FIFO within a level is the stream's order; priority is one stream per level, read from
  the highest level down. Levels are few, so a take costs a round trip or two per level.

Keys (``{prefix}`` defaults to ``taskscheduler:queue``):

================================  ======  ====================================================
key                               type    purpose
================================  ======  ====================================================
``{prefix}:epoch``                string  set when the queue was built; gone after a FLUSHDB,
                                          which tells the Dispatcher to rebuild from the database
``{prefix}:levels``               zset    the priority levels that have a stream (score = level)
``{prefix}:level:{level}``        stream  entries ``task``, ``version``; group ``schedulers``
``{prefix}:queued``               set     ``task:version`` of every entry not yet acknowledged:
                                          the Dispatcher pushes a task only if it is not here
================================  ======  ====================================================

The database stays the source of truth. An entry carries the task's version when it was
queued, so a task that leaves ``init`` and comes back (requeue, retry, continue) is a new
``task:version`` and queued again, while a task still waiting is queued once. Losing all of
Redis loses no task: the markers are gone with the streams, so the Dispatcher's next pass
pushes every ready task again. Duplicates (a push racing an acknowledgement, a rebuild while
a node still holds an old entry) are harmless: the version-checked ``create`` starts a task
once and the losing item is acknowledged. Redis must keep what it is given
(``maxmemory-policy noeviction``): a marker evicted without its entry would only delay a
task until the next rebuild, but an evicted entry with its marker kept would strand it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from taskscheduler.queue.base import QueueItem

log = logging.getLogger(__name__)

GROUP = "schedulers"
DEFAULT_PREFIX = "taskscheduler:queue"

# Push the tasks not queued yet, each to its level's stream (created with the group on first
# use), in the order given; note a missing epoch (a fresh or flushed Redis) while at it.
# KEYS: queued, levels, epoch.  ARGV: prefix, group, now, then (task, version, level) triples.
_PUSH = """
local fresh = redis.call('SET', KEYS[3], ARGV[3], 'NX') and 1 or 0
local pushed = 0
for i = 4, #ARGV, 3 do
  local task, version, level = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('SADD', KEYS[1], task .. ':' .. version) == 1 then
    local stream = ARGV[1] .. ':level:' .. level
    if redis.call('EXISTS', stream) == 0 then
      redis.call('XGROUP', 'CREATE', stream, ARGV[2], '0', 'MKSTREAM')
      redis.call('ZADD', KEYS[2], level, level)
    end
    redis.call('XADD', stream, '*', 'task', task, 'version', version)
    pushed = pushed + 1
  end
end
return {fresh, pushed}
"""


@dataclass(frozen=True, slots=True)
class Receipt:
    """What acknowledging one entry needs: where it is, and the marker it holds."""

    stream: str
    entry_id: str
    marker: str


class RedisQueue:
    exclusive = True

    def __init__(
        self,
        client: redis.Redis,
        *,
        consumer: str,
        redeliver_after_seconds: float,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self.redis = client
        self.consumer = consumer
        self.redeliver_after_ms = max(1, int(redeliver_after_seconds * 1000))
        self.prefix = prefix
        self._keys = [f"{prefix}:queued", f"{prefix}:levels", f"{prefix}:epoch"]
        self._push = client.register_script(_PUSH)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisQueue:
        return cls(redis.Redis.from_url(url, decode_responses=True), **kwargs)

    def push(self, tasks: Sequence[tuple[int, int, int]], now: datetime) -> tuple[bool, int]:
        """Queue ``(task_id, version, important_level)`` in the order given, skipping any
        already queued; return whether the queue was empty of all state (built afresh) and
        how many entries were added."""
        args: list[Any] = [self.prefix, GROUP, now.isoformat()]
        for task_id, version, level in tasks:
            args += [task_id, version, level]
        fresh, pushed = self._push(keys=self._keys, args=args)
        return bool(fresh), int(pushed)

    def take(self, n: int, now: datetime) -> list[QueueItem]:
        items: list[QueueItem] = []
        try:
            levels: Any = self.redis.zrange(self._keys[1], 0, -1, desc=True)
            for level in levels:
                if len(items) >= n:
                    break
                stream = f"{self.prefix}:level:{level}"
                items += self._recover(stream, n - len(items))
                if len(items) < n:
                    items += self._read(stream, n - len(items))
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # Redis lost its data between the calls: the Dispatcher rebuilds the queue.
            log.warning("queue stream vanished (%s); waiting for the rebuild", exc)
        return items

    def _recover(self, stream: str, want: int) -> list[QueueItem]:
        """Entries a consumer took and did not acknowledge within the redelivery timeout
        (its node died, or hung): claim them for this node."""
        found: list[QueueItem] = []
        cursor = "0-0"
        while len(found) < want:
            reply: Any = self.redis.xautoclaim(
                stream, GROUP, self.consumer, self.redeliver_after_ms, cursor, count=want
            )
            cursor, entries = reply[0], reply[1]
            found += self._items(stream, entries)
            if cursor == "0-0":
                break
        if found:
            log.info("recovered %d unacknowledged item(s) from %s", len(found), stream)
        return found

    def _read(self, stream: str, want: int) -> list[QueueItem]:
        reply: Any = self.redis.xreadgroup(GROUP, self.consumer, {stream: ">"}, count=want)
        return [item for _, entries in reply or () for item in self._items(stream, entries)]

    @staticmethod
    def _items(stream: str, entries: Sequence[Any]) -> list[QueueItem]:
        return [
            QueueItem(
                int(fields["task"]),
                Receipt(stream, entry_id, f"{fields['task']}:{fields['version']}"),
            )
            for entry_id, fields in entries
            if fields  # an entry deleted while pending comes back empty
        ]

    def ack(self, items: Sequence[QueueItem]) -> None:
        """Acknowledge, delete the entry (the stream holds only what is in line or in
        flight) and drop the marker, in one transaction."""
        if not items:
            return
        with self.redis.pipeline(transaction=True) as pipe:
            for item in items:
                receipt = item.receipt
                assert isinstance(receipt, Receipt), "an item of another queue"
                pipe.xack(receipt.stream, GROUP, receipt.entry_id)
                pipe.xdel(receipt.stream, receipt.entry_id)
                pipe.srem(self._keys[0], receipt.marker)
            pipe.execute()
