"""Named leases with fencing tokens behind one interface (:class:`Locks`); the backend is
chosen by ``TASK_LOCK_BACKEND``: ``auto`` means Redis when ``TASK_REDIS_URL`` is set, else
the database. ``local`` holds them in the process and suits a single node only."""

from __future__ import annotations

from sqlalchemy import Engine

from taskscheduler.locks.base import KeepAlive, Locks, Ownership, Token
from taskscheduler.locks.database import DatabaseLocks
from taskscheduler.locks.local import LocalLocks
from taskscheduler.settings import Settings

__all__ = ["DatabaseLocks", "KeepAlive", "LocalLocks", "Locks", "Ownership", "Token", "make_locks"]


def make_locks(settings: Settings, engine: Engine) -> Locks:
    backend = settings.lock_backend
    if backend == "auto":
        backend = "redis" if settings.redis_url else "database"
    if backend == "local":
        return LocalLocks()
    if backend == "redis":
        from taskscheduler.locks.redis import RedisLocks  # redis is an optional dependency

        if not settings.redis_url:
            raise ValueError("TASK_LOCK_BACKEND=redis needs TASK_REDIS_URL")
        return RedisLocks.from_url(settings.redis_url)
    return DatabaseLocks(engine)
