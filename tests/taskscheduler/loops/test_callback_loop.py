"""The Callback loop: a finished task is POSTed to a real HTTP receiver, tries on record."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import Engine, select

from taskscheduler.db.models import utcnow
from taskscheduler.locks.redis import RedisLocks
from taskscheduler.loops.callbacks import LOGS, SWEEP_LEASE, CallbackLoop
from taskscheduler.tasks.store import insert_task
from taskscheduler.tasks.transitions import transition


class Receiver:
    """An HTTP endpoint that records what it is sent and answers ``status``."""

    def __init__(self) -> None:
        self.status = 200
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.received.append(json.loads(self.rfile.read(length)))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/done"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    threading.Thread(target=r.server.serve_forever, daemon=True).start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def cancelled_task(engine: Engine, callback_url: str) -> int:
    with engine.begin() as conn:
        task_id = insert_task(
            conn, {"task_type": "noop", "callback_url": callback_url}, actor="test"
        )
    transition(engine, task_id, "cancel", actor="test", reason="not needed")
    return task_id


def log_lines(engine: Engine, task_id: int) -> list[str]:
    with engine.connect() as conn:
        query = select(LOGS.c.message).where(LOGS.c.task_id == task_id).order_by(LOGS.c.id)
        return list(conn.execute(query).scalars())


def test_a_finished_task_is_posted_once_to_its_callback_url_and_the_delivery_logged(
    engine, receiver
):
    # Given a task that finished with a callback_url
    task_id = cancelled_task(engine, receiver.url)
    loop = CallbackLoop(engine, node="n1")
    # When the loop runs twice
    loop.tick(utcnow())
    loop.tick(utcnow())
    # Then the receiver got the final task once, and the task's log says so
    assert [(r["task_id"], r["task_status"], r["outcome"]) for r in receiver.received] == [
        (task_id, "finish", "cancelled")
    ]
    assert log_lines(engine, task_id) == ["callback delivered: HTTP 200"]


def test_a_failed_callback_is_retried_after_its_backoff_and_each_try_logged(engine, receiver):
    # Given a receiver that answers 500 at first
    receiver.status = 500
    task_id = cancelled_task(engine, receiver.url)
    loop, now = CallbackLoop(engine, node="n1"), utcnow()
    # When the loop tries, looks again before the backoff, then after it with the receiver well
    loop.tick(now)
    loop.tick(now + timedelta(seconds=0.5))
    receiver.status = 200
    loop.tick(now + timedelta(seconds=1.5))
    # Then there were two tries, both on record
    assert len(receiver.received) == 2
    assert log_lines(engine, task_id) == ["callback failed: 500", "callback delivered: HTTP 200"]


def test_only_the_node_holding_the_delivery_lease_calls_receivers(redis_url, engine, receiver):
    # Given two nodes' callback loops sharing their locks in Redis, n1 delivering (lease 0.5 s)
    first_locks, second_locks = RedisLocks.from_url(redis_url), RedisLocks.from_url(redis_url)
    first = CallbackLoop(engine, node="n1", lease_seconds=0.5, locks=first_locks)
    second = CallbackLoop(engine, node="n2", lease_seconds=0.5, locks=second_locks)
    try:
        first.tick(utcnow())
        task_id = cancelled_task(engine, receiver.url)
        # When n2 looks while n1 holds the lease, then once n1 has stopped and it lapsed
        during = second.tick(utcnow())
        assert second_locks.wait(SWEEP_LEASE, timeout=10)
        after = second.tick(utcnow())
    finally:
        first_locks.close()
        second_locks.close()
    # Then n2 delivered only after the lease was free, and the receiver was called once
    assert (during, after) == (0, 1)
    assert [r["task_id"] for r in receiver.received] == [task_id]
