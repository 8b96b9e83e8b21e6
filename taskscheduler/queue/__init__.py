"""The dispatch queue: an interface (:mod:`.base`), the database and Redis backends, and the
factory that picks one from the settings."""

from __future__ import annotations

from sqlalchemy import Engine

from taskscheduler.queue.base import Queue, QueueItem
from taskscheduler.settings import Settings

__all__ = ["Queue", "QueueItem", "build", "redeliver_after_seconds"]


def redeliver_after_seconds(settings: Settings) -> float:
    """An item unacknowledged this long is presumed held by a dead node: three lease periods,
    so a live node working slowly through a batch is not second-guessed (and if it is, the
    version-checked ``create`` still starts the task once)."""
    return 3 * settings.lease_seconds


def build(settings: Settings, engine: Engine) -> Queue:
    """The queue ``settings`` ask for: Redis when it is configured, else the database."""
    if settings.uses_redis_queue:
        from taskscheduler.queue.redis import RedisQueue

        assert settings.redis_url is not None  # Settings.check() requires it
        return RedisQueue.from_url(
            settings.redis_url,
            consumer=settings.node_name,
            redeliver_after_seconds=redeliver_after_seconds(settings),
        )
    from taskscheduler.queue.database import DatabaseQueue

    return DatabaseQueue(engine)
