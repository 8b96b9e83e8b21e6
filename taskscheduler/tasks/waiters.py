"""Answering "has it finished?" the moment it has: the API's ``wait=`` on a task query.

A client that wants a task's end would otherwise poll, and each poll is a whole request for
the API to serve; a thousand clients polling every few milliseconds would load the node more
than the tasks do. With ``wait=S`` the API holds the answer until the task has finished or
``S`` seconds passed, and learns of the end as it happens:

1. every move to ``finish`` notes its task on the connection that writes it
   (:func:`note`, called by :func:`taskscheduler.tasks.effects.after_move`);
2. when that connection returns to the pool, the ids its committed transactions noted (a
   rollback drops its notes) are announced with each task's outcome: on a Redis channel
   that every node's API processes listen on, and to the requests waiting in this process;
3. a waiting request woken for its task answers: a status query from the announcement
   itself (a finished task's status is its outcome), any other reads the task again.

An announcement is only a hint and the database decides: a lost one (Redis down, a listener
reconnecting) costs at most :data:`POLL_SECONDS` (or :data:`DATABASE_POLL_SECONDS` without
Redis, where nothing crosses between processes), a spurious one a read. A waiting request
holds one of its API process's threads: size ``--threads`` for the clients that wait.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, Engine, event

log = logging.getLogger(__name__)

CHANNEL = "taskscheduler:finished"
#: How often a waiting request reads its task anyway, when announcements come over Redis.
POLL_SECONDS = 1.0
#: The same without Redis: announcements reach only the waiters of the writing process.
DATABASE_POLL_SECONDS = 0.02
#: How long the listener waits before subscribing again after losing Redis.
RECONNECT_SECONDS = 1.0
_NOTES = "taskscheduler.tasks.waiters"
_COMMITTED = "taskscheduler.tasks.waiters.committed"


def note(conn: Connection, task_id: int, outcome: str | None) -> None:
    """Announce that ``task_id`` finished with ``outcome`` once ``conn``'s transaction has
    committed."""
    conn.info.setdefault(_NOTES, {})[task_id] = outcome


class _Waiter:
    """One waiting request: woken by the announcement of its task, which says the outcome."""

    def __init__(self) -> None:
        self.woken = threading.Event()
        self.outcome: str | None = None


class Finishes:
    """Announces the tasks that finished (every process that moves tasks) and wakes the
    requests waiting for them (the API processes)."""

    def __init__(self, redis_url: str | None) -> None:
        self._redis: Any = None
        if redis_url:
            import redis  # an optional extra: imported only when configured

            self._redis = redis.Redis.from_url(redis_url, socket_timeout=1)
        self.poll_seconds = POLL_SECONDS if self._redis is not None else DATABASE_POLL_SECONDS
        self._lock = threading.Lock()
        self._waiting: dict[int, set[_Waiter]] = {}
        self._listening = False
        self._subscribed = threading.Event()

    def install(self, engine: Engine) -> None:
        """Announce what the transactions of ``engine``'s connections finish: the notes of a
        committed transaction once its connection is back in the pool; those of a rolled
        back one never."""

        @event.listens_for(engine, "commit")
        def _on_commit(conn: Connection) -> None:
            if noted := conn.info.pop(_NOTES, None):
                conn.info.setdefault(_COMMITTED, {}).update(noted)

        @event.listens_for(engine, "rollback")
        def _on_rollback(conn: Connection) -> None:
            conn.info.pop(_NOTES, None)

        @event.listens_for(engine, "checkin")
        def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
            record.info.pop(_NOTES, None)
            if finished := record.info.pop(_COMMITTED, None):
                self.announce(finished)

    def announce(self, finished: Mapping[int, str | None]) -> None:
        """Best effort: a lost announcement is a later answer, never a wrong one."""
        self._wake(finished)
        if self._redis is None:
            return
        message = ",".join(
            f"{task_id}={outcome}" if outcome else str(task_id)
            for task_id, outcome in sorted(finished.items())
        )
        try:
            self._redis.publish(CHANNEL, message)
        except Exception as exc:  # redis.RedisError and socket errors alike
            log.debug("finish of %s not announced: %s", sorted(finished), exc)

    def wait(self, task_id: int, seconds: float, finished: Callable[[], bool]) -> str | None:
        """Return once ``finished()`` says so, or after ``seconds`` (None), or once the
        task's end is announced (its outcome)."""
        deadline = time.monotonic() + seconds
        waiter = _Waiter()
        with self._lock:
            self._waiting.setdefault(task_id, set()).add(waiter)
        try:
            self._listen()
            # registered before the first look: an end announced from now on wakes us
            while not finished():
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                waiter.woken.wait(min(left, self.poll_seconds))
                waiter.woken.clear()
                if waiter.outcome is not None:
                    return waiter.outcome
            return None
        finally:
            with self._lock:
                waiters = self._waiting.get(task_id, set())
                waiters.discard(waiter)
                if not waiters:
                    self._waiting.pop(task_id, None)

    def _wake(self, finished: Mapping[int, str | None]) -> None:
        with self._lock:
            for task_id, outcome in finished.items():
                for waiter in self._waiting.get(task_id, ()):
                    waiter.outcome = outcome
                    waiter.woken.set()

    def _listen(self) -> None:
        """Start this process's listener on first use (after gunicorn forked it)."""
        if self._redis is None or self._listening:
            return
        with self._lock:
            if self._listening:
                return
            self._listening = True
        threading.Thread(target=self._run, name="finished-listener", daemon=True).start()
        # an end announced before the subscription took would only be seen by the next poll
        self._subscribed.wait(RECONNECT_SECONDS)

    def _run(self) -> None:
        while True:
            try:
                pubsub = self._redis.pubsub()
                pubsub.subscribe(CHANNEL)
                for message in pubsub.listen():
                    if message["type"] == "subscribe":
                        self._subscribed.set()
                    elif isinstance(data := message.get("data"), bytes):
                        self._wake(_parse(data))
            except Exception as exc:
                log.warning("finish announcements lost (%s); waiting requests poll", exc)
                time.sleep(RECONNECT_SECONDS)


def _parse(message: bytes) -> dict[int, str | None]:
    """``7=succeeded,8`` → ``{7: "succeeded", 8: None}`` (parts it cannot read are left out:
    their waiters find out by their own look)."""
    found: dict[int, str | None] = {}
    for part in message.decode(errors="replace").split(","):
        task_id, _, outcome = part.partition("=")
        if task_id.isdigit():
            found[int(task_id)] = outcome or None
    return found
