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
  the highest level down. A take is one script (recover, then read, level by level): one
  round trip however many levels there are.

Keys (``{prefix}`` defaults to ``taskscheduler:queue``):

================================  ======  ====================================================
key                               type    purpose
================================  ======  ====================================================
``{prefix}:epoch``                string  set when the queue was built; gone after a FLUSHDB,
                                          which tells the Dispatcher to rebuild from the database
``{prefix}:levels``               zset    the priority levels that have a stream (score = level)
``{prefix}:level:{level}``        stream  entries ``task``, ``version`` (and ``start``, the
                                          copy of :mod:`taskscheduler.tasks.start_copy`); group
                                          ``schedulers``
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

from taskscheduler.queue.base import QueueItem, Ready

log = logging.getLogger(__name__)

GROUP = "schedulers"
DEFAULT_PREFIX = "taskscheduler:queue"

# Push the tasks not queued yet, each to its level's stream (created with the group on first
# use), in the order given. The Dispatcher passes the time and learns whether the epoch was
# missing (a fresh or flushed Redis); the API passes none, leaving that to the Dispatcher,
# and a channel to publish on once something was pushed, in the same round trip.
# KEYS: queued, levels, epoch.
# ARGV: prefix, group, now or "", channel or "", then (task, version, level, start or "")
# quadruples.
_PUSH = """
local fresh = 0
if ARGV[3] ~= '' then fresh = redis.call('SET', KEYS[3], ARGV[3], 'NX') and 1 or 0 end
local pushed = 0
for i = 5, #ARGV, 4 do
  local task, version, level, start = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if redis.call('SADD', KEYS[1], task .. ':' .. version) == 1 then
    local stream = ARGV[1] .. ':level:' .. level
    if redis.call('EXISTS', stream) == 0 then
      redis.call('XGROUP', 'CREATE', stream, ARGV[2], '0', 'MKSTREAM')
      redis.call('ZADD', KEYS[2], level, level)
    end
    if start == '' then
      redis.call('XADD', stream, '*', 'task', task, 'version', version)
    else
      redis.call('XADD', stream, '*', 'task', task, 'version', version, 'start', start)
    end
    pushed = pushed + 1
  end
end
if pushed > 0 and ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[4], '1') end
return {fresh, pushed}
"""


# Hand out up to n entries, from the highest level down: first those another consumer took
# and left unacknowledged past the redelivery timeout (its node died), then new ones. One
# script, so a take is one round trip however many levels there are.
# KEYS: levels.  ARGV: prefix, group, consumer, redeliver-after ms, n.
# Returns {recovered, {{stream, entry id, task, version, start or ""}, ...}}.
_TAKE = """
local want = tonumber(ARGV[5])
local taken, recovered = {}, 0
local function keep(stream, entries)
  for _, entry in ipairs(entries) do
    local fields = entry[2]
    if fields and #fields > 0 then  -- an entry deleted while pending comes back empty
      local f = {}
      for i = 1, #fields, 2 do f[fields[i]] = fields[i + 1] end
      taken[#taken + 1] = {stream, entry[1], f.task, f.version, f.start or ''}
      want = want - 1
    end
  end
end
for _, level in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, -1)) do
  if want <= 0 then break end
  local stream = ARGV[1] .. ':level:' .. level
  local cursor = '0-0'
  repeat
    local before = #taken
    local reply = redis.call(
      'XAUTOCLAIM', stream, ARGV[2], ARGV[3], ARGV[4], cursor, 'COUNT', want)
    cursor = reply[1]
    keep(stream, reply[2])
    recovered = recovered + #taken - before
  until cursor == '0-0' or want <= 0
  if want > 0 then
    local reply = redis.call(
      'XREADGROUP', 'GROUP', ARGV[2], ARGV[3], 'COUNT', want, 'STREAMS', stream, '>')
    if reply then keep(stream, reply[1][2]) end
  end
end
return {recovered, taken}
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
        self._take = client.register_script(_TAKE)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisQueue:
        return cls(redis.Redis.from_url(url, decode_responses=True), **kwargs)

    def push(self, tasks: Sequence[Ready], now: datetime) -> tuple[bool, int]:
        """Queue ``tasks`` in the order given, skipping any already queued; return whether
        the queue was empty of all state (built afresh) and how many entries were added."""
        fresh, pushed = self._run_push(tasks, now.isoformat(), "")
        return bool(fresh), int(pushed)

    def offer(self, tasks: Sequence[Ready], channel: str) -> None:
        """Queue tasks the moment they were committed, not at the Dispatcher's next pass, and
        publish on ``channel`` when any was new: one round trip. The Dispatcher still
        pushes whatever an offer missed (a crash, or Redis down, between commit and offer)."""
        self._run_push(tasks, "", channel)

    def _run_push(self, tasks: Sequence[Ready], now: str, channel: str) -> Any:
        args: list[Any] = [self.prefix, GROUP, now, channel]
        for task_id, version, level, start in tasks:
            args += [task_id, version, level, start or ""]
        return self._push(keys=self._keys, args=args)

    def take(self, n: int, now: datetime) -> list[QueueItem]:
        try:
            recovered, entries = self._take(
                keys=self._keys[1:2],
                args=[self.prefix, GROUP, self.consumer, self.redeliver_after_ms, n],
            )
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # Redis lost its data between the calls: the Dispatcher rebuilds the queue.
            log.warning("queue stream vanished (%s); waiting for the rebuild", exc)
            return []
        if recovered:
            log.info("recovered %d unacknowledged item(s)", recovered)
        return [
            QueueItem(int(task), Receipt(stream, entry_id, f"{task}:{version}"), start or None)
            for stream, entry_id, task, version, start in entries
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
