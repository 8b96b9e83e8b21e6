"""Locks in the ``leases`` table (:mod:`taskscheduler.locks.leases`): every node of a site that
shares the database shares them, with nothing else to run.

Each call is one short transaction of its own. Expiry is judged by the nodes' clocks
(UTC), as everywhere else in the scheduler, so the nodes' clocks must agree to well
within ``ttl``. The fencing token is the row's ``token`` column, incremented by the same
UPDATE that takes the lease.

The database cannot tell another process that a row changed, so :meth:`wait` looks
again every :data:`POLL_SECONDS`; a release made through this same object (another
thread of the process) wakes it at once. (MySQL's ``GET_LOCK`` would wake waiters, but
ties the lock to one connection and has no expiry or token; the lease row has both.)
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import Engine

from taskscheduler.db.engine import reading
from taskscheduler.db.models import utcnow
from taskscheduler.locks import leases
from taskscheduler.locks.base import Locks, Token

#: How often a waiter looks at a name held by another process.
POLL_SECONDS = 0.1


class DatabaseLocks(Locks):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._released = threading.Condition()

    def acquire(self, name: str, holder: str, ttl: float) -> Token | None:
        now = utcnow()
        with self.engine.begin() as conn:
            return leases.claim(conn, name, holder, now, now + timedelta(seconds=ttl))

    def renew(self, name: str, token: Token, ttl: float) -> bool:
        now = utcnow()
        with self.engine.begin() as conn:
            return leases.renew(conn, name, token, now, now + timedelta(seconds=ttl))

    def release(self, name: str, token: Token) -> bool:
        with self.engine.begin() as conn:
            freed = leases.release_token(conn, name, token)
        if freed:
            with self._released:
                self._released.notify_all()
        return freed

    def wait(self, name: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.holder_of(name) is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._released:
                self._released.wait(min(POLL_SECONDS, remaining))
        return True

    def holder_of(self, name: str) -> str | None:
        with reading(self.engine) as conn:
            return leases.holder_of(conn, name, utcnow())
