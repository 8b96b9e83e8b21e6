"""The Callback loop: a finished task is POSTed to a real HTTP receiver, tries on record,
signed, only to allowed hosts, and never more than its bounded tries."""

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
from taskscheduler.loops.callbacks import LOGS, MAX_TRIES, SWEEP_LEASE, CallbackLoop
from taskscheduler.tasks.store import insert_task
from taskscheduler.tasks.transitions import transition
from taskworker import signing
from taskworker.errors import Unauthorized

#: What an operator sets for callbacks to go anywhere: the hosts, and the key that signs them.
ALLOW = ["127.0.0.1"]
CALLBACK_SECRET = "callback-secret-of-32-bytes-1234"


def callbacks(engine: Engine, node: str = "n1", **kwargs: Any) -> CallbackLoop:
    """The loop as a node with ``TASK_CALLBACK_ALLOW=127.0.0.1`` builds it."""
    return CallbackLoop(engine, node=node, allow=ALLOW, secret=CALLBACK_SECRET, **kwargs)


class Receiver:
    """An HTTP endpoint that records what it is sent and answers ``status``."""

    def __init__(self) -> None:
        self.status = 200
        self.received: list[dict[str, Any]] = []
        #: (request target, headers, body) of every request, as it arrived
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = self.rfile.read(length)
                receiver.requests.append((self.path, dict(self.headers), body))
                receiver.received.append(json.loads(body))
                self.send_response(receiver.status)
                if 300 <= receiver.status < 400:
                    self.send_header("Location", "/elsewhere")
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
    loop = callbacks(engine)
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
    loop, now = callbacks(engine), utcnow()
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
    first = callbacks(engine, "n1", lease_seconds=0.5, locks=first_locks)
    second = callbacks(engine, "n2", lease_seconds=0.5, locks=second_locks)
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


def test_a_callback_carries_a_signature_its_receiver_verifies_with_the_callback_secret(
    engine, receiver
):
    # Given a task that finished with a callback_url with a query
    task_id = cancelled_task(engine, receiver.url + "?from=scheduler")
    # When the loop delivers it
    callbacks(engine).tick(utcnow())
    # Then the receiver can verify the request with the callback secret, and with no other key
    ((target, headers, body),) = receiver.requests
    assert target == "/done?from=scheduler"
    assert json.loads(body)["task_id"] == task_id
    signing.verify(CALLBACK_SECRET, "POST", target, body, headers)
    with pytest.raises(Unauthorized):
        signing.verify("another-secret-of-32-bytes-12345", "POST", target, body, headers)
    with pytest.raises(Unauthorized):
        signing.verify(CALLBACK_SECRET, "POST", target, body.replace(b"finish", b"paused"), headers)


def test_a_callback_whose_host_is_no_longer_allowed_is_abandoned_unsent(engine, receiver):
    # Given a task owed a callback to a host the node no longer allows
    task_id = cancelled_task(engine, receiver.url)
    loop = CallbackLoop(engine, node="n1", allow=["hooks.example.com"], secret=CALLBACK_SECRET)
    # When the loop runs, and again later
    loop.tick(utcnow())
    loop.tick(utcnow() + timedelta(hours=1))
    # Then the receiver was never called, and the task's log says why, once
    assert receiver.requests == []
    assert log_lines(engine, task_id) == [
        "callback abandoned, not sent: host '127.0.0.1' is not allowed by TASK_CALLBACK_ALLOW"
    ]


def test_a_redirect_is_not_followed_and_counts_as_a_failed_try(engine, receiver):
    # Given a receiver that answers with a redirect
    receiver.status = 302
    task_id = cancelled_task(engine, receiver.url)
    # When the loop tries
    callbacks(engine).tick(utcnow())
    # Then only the callback_url was called, and the try is on record as failed
    assert [target for target, _, _ in receiver.requests] == ["/done"]
    assert log_lines(engine, task_id) == ["callback failed: 302 (redirects are not followed)"]


def test_a_callback_that_always_fails_is_abandoned_after_its_bounded_tries(engine, receiver):
    # Given a receiver that always fails
    receiver.status = 500
    task_id = cancelled_task(engine, receiver.url)
    loop, now = callbacks(engine), utcnow()
    # When the loop runs long after each backoff, more times than the tries allowed
    for hour in range(MAX_TRIES + 3):
        loop.tick(now + timedelta(hours=hour))
    # Then the receiver was called MAX_TRIES times, the last try's line saying it gave up
    assert len(receiver.requests) == MAX_TRIES
    lines = log_lines(engine, task_id)
    assert lines[:-1] == ["callback failed: 500"] * (MAX_TRIES - 1)
    assert lines[-1] == f"callback abandoned after {MAX_TRIES} tries; last: callback failed: 500"
