"""One interface for named, expiring locks with fencing tokens, whatever holds them.

A lock here is a lease: it is taken for ``ttl`` seconds and lapses unless renewed, so a
holder that dies (kill -9, a lost machine) frees the name by itself. Every acquisition
returns a fencing token that only ever grows for that name; a holder that lost its lease
and comes back is told apart from the current one by its older token, and every renewal
or release must present the token it was given. Holding a lock prevents duplicate work
only: whatever the holder then does to a task is still version-checked in the database
(the state is validated again after every acquisition), so a holder that lost its lease
mid-way can waste effort but never move a task twice.

Backends (:func:`taskscheduler.locks.make_locks` picks one from ``TASK_LOCK_BACKEND``):

* :mod:`~taskscheduler.locks.local` — one process (threads); the embedded single node.
* :mod:`~taskscheduler.locks.database` — the ``leases`` table, shared by all nodes of a site.
* :mod:`~taskscheduler.locks.redis` — Redis, shared by all nodes; releases wake waiters
  at once.

They hold what one node at a time should do (the Checker's sweep, callback delivery).
The resource locks of tasks are a different thing and always stay in the database
(:func:`taskscheduler.tasks.effects.take_resources`): they are taken inside the transaction that
moves the task to ``prepare`` and released inside the one that ends its attempt, so the
lock and the task's state commit together or not at all. No other backend can join that
transaction: with Redis, a crash between the database commit and the Redis write would
leave a task running without its lock, or a lock held by a finished task.

:class:`KeepAlive` renews a lock from a thread for as long as its holder works, and says
when the lock was lost; :class:`Ownership` is the once-per-tick form the loops use.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from types import TracebackType

log = logging.getLogger(__name__)

#: A fencing token: strictly greater than every token given out before for the same name.
Token = int


class Locks(ABC):
    """Named leases shared by everyone who uses the same backend (process, database, Redis)."""

    @abstractmethod
    def acquire(self, name: str, holder: str, ttl: float) -> Token | None:
        """Take ``name`` for ``holder`` for ``ttl`` seconds, without waiting.

        Succeeds when the name is free, expired, or already held by ``holder`` itself (a
        restarted node with the same name takes its lease back; the old token stops
        counting). Returns the new fencing token, greater than any given out before for
        ``name``; None when someone else holds it.
        """

    @abstractmethod
    def renew(self, name: str, token: Token, ttl: float) -> bool:
        """Extend the lease to ``ttl`` seconds from now if ``token`` is still the current,
        unexpired one. False means the lease is lost: the holder must stop acting on it."""

    @abstractmethod
    def release(self, name: str, token: Token) -> bool:
        """Free ``name`` if ``token`` is still the current one, and wake its waiters.
        A stale token frees nothing (False): the name may already be someone else's."""

    @abstractmethod
    def wait(self, name: str, timeout: float) -> bool:
        """Block until ``name`` is free (released or expired) or ``timeout`` seconds passed.

        True when the name was seen free; the caller still has to :meth:`acquire` it, and
        may lose that race. Wakes as soon as a release happens where the backend can tell
        (in-process, Redis pub/sub), else looks again at a short interval.
        """

    @abstractmethod
    def holder_of(self, name: str) -> str | None:
        """Who holds ``name`` right now; None when it is free or expired."""

    def close(self) -> None:  # noqa: B027 (optional hook: most backends hold nothing)
        """Give back connections; leases held stay until released or expired."""


class KeepAlive:
    """Renews a held lock from a daemon thread every ``interval`` (a third of ``ttl`` by
    default), until :meth:`stop`, so a holder that works longer than ``ttl`` keeps it.

    Renewing from a thread ties the lease to the process's life, not to the work's pace:
    when the process dies, renewals stop and the lease lapses after ``ttl``. A refused
    renewal (someone else holds the name now) sets :attr:`lost` and calls ``on_lost``
    once; the holder should then stop. A renewal that fails with an error (a database or
    Redis outage) is retried at the next interval, and counts as a loss once ``ttl`` has
    passed since the last successful one, since the lease has lapsed by then.
    """

    def __init__(
        self,
        locks: Locks,
        name: str,
        token: Token,
        ttl: float,
        *,
        interval: float | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.locks = locks
        self.name = name
        self.token = token
        self.ttl = ttl
        self.interval = interval if interval is not None else ttl / 3
        self.on_lost = on_lost
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"keepalive:{name}", daemon=True)

    def start(self) -> KeepAlive:
        self._thread.start()
        return self

    def stop(self, *, release: bool = False) -> None:
        """Stop renewing; with ``release``, free the name too (if still held)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
        if release and not self.lost.is_set():
            self.locks.release(self.name, self.token)

    def __enter__(self) -> KeepAlive:
        return self.start()

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.stop(release=True)

    def _run(self) -> None:
        renewed_at = time.monotonic()
        while not self._stop.wait(self.interval):
            try:
                if self.locks.renew(self.name, self.token, self.ttl):
                    renewed_at = time.monotonic()
                    continue
                reason = "taken over or expired"
            except Exception:
                log.exception("renewing lock %s failed", self.name)
                if time.monotonic() - renewed_at < self.ttl:
                    continue
                reason = f"no renewal for {self.ttl} s"
            log.warning("lock %s (token %s) lost: %s", self.name, self.token, reason)
            self.lost.set()
            if self.on_lost is not None:
                self.on_lost()
            return


class Ownership:
    """A name one node at a time should hold for as long as it keeps working on something
    (a loop's sweep): :meth:`hold` is called once per tick and renews the lease, or tries
    to take it when this node does not hold it (never had it, or lost it).

    The lease must outlast the pause between two ticks; when this node dies or stalls
    past ``ttl``, another node's next :meth:`hold` takes over. A lease renewed less than a
    third of ``ttl`` ago is held without asking again: nobody can take it before it
    expires, and a loop ticking ten times a second should not pay a round trip per tick
    and lease for it.
    """

    def __init__(self, locks: Locks, name: str, holder: str, ttl: float) -> None:
        self.locks = locks
        self.name = name
        self.holder = holder
        self.ttl = ttl
        self.token: Token | None = None
        self._renewed_at = -ttl

    def hold(self) -> bool:
        """Whether this node holds the name for at least the next two thirds of ``ttl``."""
        started = time.monotonic()
        if self.token is not None:
            if started - self._renewed_at < self.ttl / 3:
                return True
            if self.locks.renew(self.name, self.token, self.ttl):
                self._renewed_at = started
                return True
        self.token = self.locks.acquire(self.name, self.holder, self.ttl)
        self._renewed_at = started
        return self.token is not None
