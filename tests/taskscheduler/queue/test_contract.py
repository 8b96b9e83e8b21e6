"""What every Queue backend promises (taskscheduler/queue/base.py), proved on each: the
database queue on SQLite and on MariaDB, and the Redis queue fed by the Dispatcher.

A consumer here does what the Scheduler loop does with an item: read the row, start the
task with the version-checked ``create`` (the claim), acknowledge.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from taskscheduler.db.models import utcnow
from taskscheduler.db.tables import TASKS
from taskscheduler.queue import Queue, QueueItem
from taskscheduler.queue.database import DatabaseQueue
from taskscheduler.tasks.store import insert_task
from taskscheduler.tasks.transitions import transition
from taskworker.errors import ConcurrentUpdate, TransitionRefused

#: Short, so the tests of redelivery wait little; long enough for a take to finish first.
REDELIVER_AFTER_SECONDS = 0.5


@dataclass
class Line:
    """A database of tasks and the queue in front of it, as seen by several consumers."""

    engine: Engine
    backend: str
    redis_url: str | None = None

    def consumer(self, name: str) -> Queue:
        if self.redis_url is None:
            return DatabaseQueue(self.engine)
        from taskscheduler.queue.redis import RedisQueue

        return RedisQueue.from_url(
            self.redis_url, consumer=name, redeliver_after_seconds=REDELIVER_AFTER_SECONDS
        )

    def feed(self) -> int:
        """What the Dispatcher does on a node with the Redis queue; nothing otherwise."""
        if self.redis_url is None:
            return 0
        from taskscheduler.loops.dispatcher import DispatcherLoop

        queue = self.consumer("dispatcher")
        return DispatcherLoop(self.engine, queue).tick(utcnow())  # type: ignore[arg-type]

    def lose_queue(self) -> None:
        """Redis loses everything (FLUSHDB); the database queue has nothing to lose."""
        if self.redis_url is not None:
            import redis

            client = redis.Redis.from_url(self.redis_url)
            client.flushdb()
            client.close()

    def submit(self, level: int = 0, **values: Any) -> int:
        with self.engine.begin() as conn:
            row = {"task_type": "noop", "params": {}, "important_level": level, **values}
            return insert_task(conn, row, actor="test")

    def claim(self, queue: Queue, item: QueueItem) -> bool:
        """Start the item's task as the Scheduler does, then acknowledge the item."""
        try:
            with self.engine.connect() as conn:
                version = conn.execute(
                    select(TASKS.c.version).where(TASKS.c.id == item.task_id)
                ).scalar_one()
            transition(self.engine, item.task_id, "create", actor="test", expect_version=version)
            return True
        except (ConcurrentUpdate, TransitionRefused):
            return False
        finally:
            queue.ack([item])


@pytest.fixture(params=["database-sqlite", "database-mysql", "redis"])
def line(request: pytest.FixtureRequest) -> Iterator[Line]:
    if request.param == "redis":
        engine = request.getfixturevalue("sqlite_engine")
        yield Line(engine, "redis", request.getfixturevalue("redis_url"))
    else:
        name = request.param.split("-")[1]
        yield Line(request.getfixturevalue(f"{name}_engine"), request.param)


def ids(items: list[QueueItem]) -> list[int]:
    return [item.task_id for item in items]


def later(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


def test_higher_levels_come_first_and_each_level_in_the_order_it_was_submitted(line):
    # Given tasks of three levels, submitted interleaved
    levels = [0, 5, 1, 5, 0, 1, 5]
    submitted = [(line.submit(level), level) for level in levels]
    line.feed()
    # When a consumer takes them all
    taken = ids(line.consumer("a").take(10, utcnow()))
    # Then the highest level comes first, and within a level the first submitted first
    expected = [task for task, _ in sorted(submitted, key=lambda t: (-t[1], t[0]))]
    assert taken == expected


def test_a_take_hands_out_no_more_than_asked_and_the_rest_comes_next(line):
    # Given five waiting tasks
    tasks = [line.submit() for _ in range(5)]
    line.feed()
    queue = line.consumer("a")
    # When a consumer takes two, starts them, then takes again
    first = queue.take(2, utcnow())
    for item in first:
        assert line.claim(queue, item)
    rest = queue.take(10, utcnow())
    # Then it got the first two, then the other three
    assert (ids(first), ids(rest)) == (tasks[:2], tasks[2:])


def test_tasks_not_ready_are_never_handed_out(line):
    # Given a task whose start time is ahead, one waiting for its parents (no ready_at),
    # one that is not in init, and one ready
    line.submit(ready_at=later(3600))
    line.submit(ready_at=None)
    paused = line.submit()
    transition(line.engine, paused, "pause", actor="test")
    ready = line.submit()
    line.feed()
    # When a consumer takes
    taken = ids(line.consumer("a").take(10, utcnow()))
    # Then only the ready one is handed out
    assert taken == [ready]


def test_two_consumers_racing_start_every_task_exactly_once(line):
    # Given forty waiting tasks and two consumers that take, start and acknowledge in a loop
    tasks = {line.submit(level=i % 3) for i in range(40)}
    line.feed()
    started: list[int] = []
    lock = threading.Lock()

    def consume(name: str) -> None:
        queue = line.consumer(name)
        while items := queue.take(4, utcnow()):
            for item in items:
                if line.claim(queue, item):
                    with lock:
                        started.append(item.task_id)

    # When both run at once
    threads = [threading.Thread(target=consume, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # Then every task was started, none twice
    assert Counter(started) == Counter(tasks)


@pytest.mark.parametrize("line", ["redis"], indirect=True)  # the one exclusive backend
def test_an_exclusive_queue_never_hands_one_item_to_two_consumers(line):
    assert line.consumer("a").exclusive
    # Given ten waiting tasks
    tasks = [line.submit() for _ in range(10)]
    line.feed()
    a, b = line.consumer("a"), line.consumer("b")
    # When two consumers take in turns without acknowledging anything
    taken_a = ids(a.take(3, utcnow())) + ids(a.take(3, utcnow()))
    taken_b = ids(b.take(10, utcnow()))
    # Then they were handed disjoint items that together are every task
    assert not set(taken_a) & set(taken_b)
    assert sorted(taken_a + taken_b) == tasks


def test_items_a_dead_consumer_took_come_back_after_the_timeout(line):
    # Given a consumer that took three tasks and died before starting them
    tasks = [line.submit() for _ in range(3)]
    line.feed()
    dead = line.consumer("dead")
    assert ids(dead.take(10, utcnow())) == tasks
    survivor = line.consumer("survivor")
    if survivor.exclusive:
        assert survivor.take(10, utcnow()) == [], "handed out again before the timeout"
    # When the redelivery timeout has passed
    time.sleep(REDELIVER_AFTER_SECONDS + 0.2)
    # Then another consumer is handed them and starts them
    again = survivor.take(10, utcnow())
    assert ids(again) == tasks
    assert all(line.claim(survivor, item) for item in again)


def test_an_acknowledged_item_is_not_handed_out_again(line):
    # Given a task that a consumer started and acknowledged
    task = line.submit()
    line.feed()
    queue = line.consumer("a")
    [item] = queue.take(10, utcnow())
    assert line.claim(queue, item)
    # When the redelivery timeout passes and the Dispatcher runs again
    time.sleep(REDELIVER_AFTER_SECONDS + 0.2)
    line.feed()
    # Then nobody is handed it again
    assert line.consumer("b").take(10, utcnow()) == []
    assert queue.take(10, utcnow()) == []
    with line.engine.connect() as conn:
        state = conn.execute(select(TASKS.c.state).where(TASKS.c.id == task)).scalar_one()
    assert state == "create"


def test_a_task_back_in_init_is_handed_out_again(line):
    # Given a task that was taken, postponed, and acknowledged
    task = line.submit()
    line.feed()
    queue = line.consumer("a")
    [item] = queue.take(10, utcnow())
    transition(line.engine, task, "postpone", actor="test")
    queue.ack([item])
    line.feed()
    assert queue.take(10, utcnow()) == []
    # When the Checker requeues it
    transition(line.engine, task, "requeue", actor="test")
    line.feed()
    # Then it is in line again and can be started
    [again] = queue.take(10, utcnow())
    assert again.task_id == task
    assert line.claim(queue, again)


def test_after_the_queue_lost_its_data_every_ready_task_is_handed_out_exactly_once(line):
    # Given seven waiting tasks of two levels, one not ready yet, and a consumer holding
    # three of them: one started, two not yet
    tasks = [line.submit(level=i % 2) for i in range(7)]
    line.submit(ready_at=later(3600))
    line.feed()
    holder = line.consumer("holder")
    held = holder.take(3, utcnow())
    assert line.claim(holder, held[0])
    # When the queue loses everything, a take finds nothing (and no error) until the
    # Dispatcher has run (twice: the second pass must add nothing)
    line.lose_queue()
    if line.redis_url is not None:
        assert line.consumer("early").take(100, utcnow()) == []
    line.feed()
    assert line.feed() == 0
    # Then the ready tasks still in init are handed out, each exactly once
    after = line.consumer("after")
    items = after.take(100, utcnow())
    assert sorted(ids(items)) == sorted(set(tasks) - {held[0].task_id})
    # And the holder's old items and the new ones together start each task once
    started = [item.task_id for item in held[1:] if line.claim(holder, item)]
    started += [item.task_id for item in items if line.claim(after, item)]
    assert Counter(started) == Counter(set(tasks) - {held[0].task_id})
