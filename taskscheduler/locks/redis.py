"""Locks in Redis: shared by every node pointed at the same Redis database.

Keys, for a lock named ``N`` (``PREFIX`` is ``taskscheduler:lock:``):

=============================  =======  ====================================================
key                            type     purpose
=============================  =======  ====================================================
``PREFIX N``                   string   ``<token>:<holder>`` with a PX expiry: the lease
``PREFIX N :token``            string   INCR counter, never expires: the last token given
``PREFIX N :released``         channel  pub/sub: a token is published on every release
=============================  =======  ====================================================

Taking a lease is one Lua script: check the holder, INCR the counter, SET the key with
PX. The INCR and the SET must be atomic together: done as two round trips (INCR, then
``SET NX PX``), a slow client could take the name with token 5 after a faster one took and
released it with token 6, and tokens would no longer grow. Renew and release are scripts
too, so that checking the token and changing the key cannot be split by another client.

Waiters are woken by pub/sub, not by a list and BLPOP: a release must wake every waiter
(as a condition variable's ``notify_all`` does), where a pushed list item wakes one and
lingers for the next waiter when nobody was waiting. A waiter subscribes before it looks
at the key, so a release between its look and its sleep is still delivered. An expiry
publishes nothing (keyspace notifications are a server-wide setting), so a waiter sleeps
at most until the key's PTTL and looks again.

If Redis loses its data (a restart without persistence), the counters restart and tokens
can repeat: tokens here fence holders of this Redis, and the database, where every task
move is version-checked, remains the authority on what was done.
"""

from __future__ import annotations

import time
from typing import Any, cast

import redis

from taskscheduler.locks.base import Locks, Token

PREFIX = "taskscheduler:lock:"

_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current and string.sub(current, string.find(current, ':', 1, true) + 1) ~= ARGV[1] then
  return false
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token .. ':' .. ARGV[1], 'PX', ARGV[2])
return token
"""

_TOKEN_OF = """
local current = redis.call('GET', KEYS[1])
if not current then return false end
return string.sub(current, 1, string.find(current, ':', 1, true) - 1)
"""

_RENEW = f"""
local function token_of() {_TOKEN_OF} end
if token_of() ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""

_RELEASE = f"""
local function token_of() {_TOKEN_OF} end
if token_of() ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], ARGV[1])
return 1
"""


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class RedisLocks(Locks):
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    @classmethod
    def from_url(cls, url: str) -> RedisLocks:
        return cls(redis.Redis.from_url(url))

    def acquire(self, name: str, holder: str, ttl: float) -> Token | None:
        keys = [PREFIX + name, f"{PREFIX}{name}:token"]
        token = self._acquire(keys=keys, args=[holder, _ms(ttl)])
        return None if token is None else int(token)

    def renew(self, name: str, token: Token, ttl: float) -> bool:
        return bool(self._renew(keys=[PREFIX + name], args=[str(token), _ms(ttl)]))

    def release(self, name: str, token: Token) -> bool:
        channel = f"{PREFIX}{name}:released"
        return bool(self._release(keys=[PREFIX + name], args=[str(token), channel]))

    def wait(self, name: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        pubsub = self.client.pubsub()
        try:
            pubsub.subscribe(f"{PREFIX}{name}:released")
            # The confirmation: from here on a release cannot go unseen.
            while pubsub.get_message(timeout=max(0.0, deadline - time.monotonic())) is None:
                if time.monotonic() >= deadline:
                    return False
            while True:
                pttl = cast(int, self.client.pttl(PREFIX + name))
                if pttl == -2:  # no such key: released or expired
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                step = remaining if pttl < 0 else min(remaining, pttl / 1000)
                pubsub.get_message(timeout=step)
        finally:
            pubsub.close()

    def holder_of(self, name: str) -> str | None:
        value: Any = self.client.get(PREFIX + name)
        if value is None:
            return None
        return str(value.decode() if isinstance(value, bytes) else value).partition(":")[2]

    def close(self) -> None:
        self.client.close()
