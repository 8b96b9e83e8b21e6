"""Locks held in this process's memory: the embedded single node, and tests.

Threads of one process exclude each other; other processes see nothing of these locks,
so this backend is only for a site with one scheduler node. One condition variable
guards the table, and a release wakes every waiter at once; a waiter on a held name also
wakes when that name's lease expires. Time is ``time.monotonic``, which a wall-clock
jump cannot move.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from taskscheduler.locks.base import Locks, Token


@dataclass
class _Lease:
    holder: str
    token: Token
    expires: float


class LocalLocks(Locks):
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._leases: dict[str, _Lease] = {}
        #: Last token given out per name; kept after release so tokens only grow.
        self._tokens: dict[str, Token] = {}

    def _current(self, name: str, now: float) -> _Lease | None:
        lease = self._leases.get(name)
        if lease is not None and lease.expires <= now:
            del self._leases[name]
            return None
        return lease

    def acquire(self, name: str, holder: str, ttl: float) -> Token | None:
        with self._changed:
            now = time.monotonic()
            lease = self._current(name, now)
            if lease is not None and lease.holder != holder:
                return None
            token = self._tokens.get(name, 0) + 1
            self._tokens[name] = token
            self._leases[name] = _Lease(holder, token, now + ttl)
            return token

    def renew(self, name: str, token: Token, ttl: float) -> bool:
        with self._changed:
            now = time.monotonic()
            lease = self._current(name, now)
            if lease is None or lease.token != token:
                return False
            lease.expires = now + ttl
            return True

    def release(self, name: str, token: Token) -> bool:
        with self._changed:
            lease = self._current(name, time.monotonic())
            if lease is None or lease.token != token:
                return False
            del self._leases[name]
            self._changed.notify_all()
            return True

    def wait(self, name: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                now = time.monotonic()
                lease = self._current(name, now)
                if lease is None:
                    return True
                if now >= deadline:
                    return False
                self._changed.wait(min(deadline, lease.expires) - now)

    def holder_of(self, name: str) -> str | None:
        with self._changed:
            lease = self._current(name, time.monotonic())
            return lease.holder if lease else None
