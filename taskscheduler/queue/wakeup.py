"""Telling every node's dispatch loop that there is work now, instead of at its next look.

A task submitted to one node's API should start within milliseconds, whichever node's loop
starts it. With Redis configured, the API publishes on one channel after it committed new
tasks, or a task back in line; every node's loops process listens on that channel, and on
the one where the ends of tasks are announced (an end frees a worker slot), and wakes its
dispatch loop. With the Redis queue, the API also queues the tasks it just committed, in the
same round trip, so the woken loop takes them at once rather than after the Dispatcher's
next pass. A message is only a hint: a lost one (Redis down, a listener reconnecting) costs
at most the loop's idle interval, since the loop still looks on its own (and the Dispatcher
queues what was not offered), and a spurious one costs one empty pass.

Without Redis there is no channel between the processes of several nodes, so the dispatch
loop looks more often instead (:data:`DATABASE_IDLE_SECONDS` in :mod:`taskscheduler.node`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row

from taskscheduler.db.models import utcnow
from taskscheduler.queue.base import Ready, in_line
from taskscheduler.tasks.start_copy import start_copy
from taskscheduler.tasks.waiters import CHANNEL as FINISHED

if TYPE_CHECKING:
    from taskscheduler.queue.redis import RedisQueue

log = logging.getLogger(__name__)

CHANNEL = "taskscheduler:wake"
#: How long the listener waits before subscribing again after losing Redis.
RECONNECT_SECONDS = 1.0


class Wakeup:
    """Publishes wake-ups (API side) and turns them into an event (loops side)."""

    def __init__(
        self, redis_url: str | None, channel: str = CHANNEL, *, queue: RedisQueue | None = None
    ) -> None:
        self._channel = channel
        self._queue = queue
        self._redis: Any = None
        if redis_url:
            import redis  # an optional extra: imported only when configured

            self._redis = redis.Redis.from_url(redis_url, socket_timeout=1)

    def notify(self, stored: Iterable[Row[Any]] = ()) -> None:
        """Wake the loops; when this node has the Redis queue, first queue those of
        ``stored`` (whole rows of tasks just committed) that are in line, each with the copy
        of its columns that spares the Scheduler loop reading it
        (:mod:`taskscheduler.tasks.start_copy`). Best effort: a failure is a later start, never a
        lost task."""
        if self._redis is None:
            return
        try:
            ready = _in_line(stored) if self._queue is not None else []
            if ready and self._queue is not None:
                self._queue.offer(ready, self._channel)
            else:
                self._redis.publish(self._channel, b"1")
        except Exception as exc:  # redis.RedisError and socket errors alike
            log.debug("wake-up not published: %s", exc)

    def listen(self, woken: threading.Event, stop: threading.Event) -> None:
        """Set ``woken`` on every message until ``stop``; runs in a thread of its own."""
        if self._redis is None:
            return
        while not stop.is_set():
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                # a task's end frees its worker's slot: announced for waiting clients
                # (taskscheduler.tasks.waiters), it wakes the loops too, with no message of its own
                pubsub.subscribe(self._channel, FINISHED)
                while not stop.is_set():
                    if pubsub.get_message(timeout=1.0) is not None:
                        woken.set()
            except Exception as exc:
                log.warning("wake-up channel lost (%s); the loops look on their own", exc)
                stop.wait(RECONNECT_SECONDS)


def _in_line(rows: Iterable[Row[Any]]) -> list[Ready]:
    """The stored tasks a worker may start now, as the queue takes them."""
    now = utcnow()
    return [
        Ready(r.id, r.version, r.important_level, start_copy(r)) for r in rows if in_line(r, now)
    ]
