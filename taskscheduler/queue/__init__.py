"""The dispatch queue: an interface (:mod:`.base`), the database and Redis backends, and the
factory of the Redis one when the settings ask for it (the database queue needs nothing
but the engine)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from taskscheduler.queue.base import Queue, QueueItem
from taskscheduler.settings import Settings

if TYPE_CHECKING:
    from taskscheduler.queue.redis import RedisQueue

__all__ = ["Queue", "QueueItem", "build_redis", "redeliver_after_seconds"]


def redeliver_after_seconds(settings: Settings) -> float:
    """An item unacknowledged this long is presumed held by a dead node: three lease periods,
    so a live node working slowly through a batch is not second-guessed (and if it is, the
    version-checked ``create`` still starts the task once)."""
    return 3 * settings.lease_seconds


def build_redis(settings: Settings) -> RedisQueue | None:
    """The Redis queue when ``settings`` ask for one (the Dispatcher feeds it, the API
    queues what it stores), else None: with the database queue a stored task is in line."""
    if not settings.uses_redis_queue:
        return None
    from taskscheduler.queue.redis import RedisQueue  # Redis is an optional extra

    assert settings.redis_url is not None  # Settings.check() requires it
    return RedisQueue.from_url(
        settings.redis_url,
        consumer=settings.node_name,
        redeliver_after_seconds=redeliver_after_seconds(settings),
    )
