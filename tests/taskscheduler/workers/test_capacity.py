"""Worker capacity as the Scheduler loop sees it: kept between reads, read again before a
task would wait, against a real database."""

from __future__ import annotations

from datetime import timedelta

import msgspec
from sqlalchemy import Engine

from taskscheduler.db.models import utcnow
from taskscheduler.tasks.store import insert_task
from taskscheduler.tasks.transitions import transition
from taskscheduler.workers.capacity import Capacity
from taskscheduler.workers.registry import Registry
from taskworker.contract.worker import WorkerRegistration


def register(engine: Engine, name: str, types: list[str], capacity: int = 2) -> str:
    url = f"http://127.0.0.1:9/{name}"
    body = {"name": name, "url": url, "capacity": capacity, "task_types": {t: {} for t in types}}
    Registry(engine).register(msgspec.convert(body, WorkerRegistration))
    return url


def started_on(engine: Engine, url: str) -> None:
    with engine.begin() as conn:
        task_id = insert_task(conn, {"task_type": "noop"}, actor="test")
    transition(engine, task_id, "create", actor="test", changes={"worker": url})


def place(engine: Engine, capacity: Capacity, task_type: str) -> list[str] | None:
    now = utcnow()
    with engine.connect() as conn:
        capacity.begin(conn, now)
        return capacity.place(conn, task_type, now)


def test_a_worker_registered_after_the_last_read_is_seen_before_a_task_is_postponed(engine):
    # Given figures read while only a worker serving other types was live
    capacity = Capacity(timedelta(seconds=30))
    register(engine, "old", ["sleep"])
    assert place(engine, capacity, "sleep") == ["http://127.0.0.1:9/old"]
    # When a worker serving noop registers and a noop task is placed within the second
    new = register(engine, "new", ["noop"])
    # Then it goes to the new worker rather than waiting for the next read
    assert place(engine, capacity, "noop") == [new]


def test_the_slots_handed_out_are_counted_off_and_a_full_worker_leaves_the_task_waiting(engine):
    # Given a worker with two slots, one taken by a task started on it
    capacity = Capacity(timedelta(seconds=30))
    url = register(engine, "w", ["noop"], capacity=2)
    started_on(engine, url)
    # When two tasks are placed one after the other
    first = place(engine, capacity, "noop")
    # (the first took the last free slot, which the database will show once it is started)
    started_on(engine, url)
    second = place(engine, capacity, "noop")
    # Then the first has the worker, the second finds it full (read again: still full)
    assert (first, second) == ([url], [])


def test_a_type_no_live_worker_serves_has_no_place(engine):
    capacity = Capacity(timedelta(seconds=30))
    register(engine, "w", ["noop"])
    assert place(engine, capacity, "sleep") is None
