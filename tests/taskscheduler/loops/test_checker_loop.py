"""The Checker's pass over stored tasks, on SQLite and MariaDB, at times the test chooses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, select, update

from taskscheduler.db.models import utcnow
from taskscheduler.db.tables import RECORDS, TASKS
from taskscheduler.locks import DatabaseLocks
from taskscheduler.loops import checker as checker_module
from taskscheduler.loops.checker import SWEEP_LEASE, CheckerLoop
from taskscheduler.tasks.store import insert_task
from taskscheduler.tasks.transitions import transition
from taskscheduler.workers.client import WorkerClient
from taskscheduler.workers.registry import Registry
from tests.processes import free_port

#: A worker address nobody listens on: every call to it fails as an unreachable worker would.
GONE = f"http://127.0.0.1:{free_port()}"


def checker(engine: Engine, node: str = "n1", lease_seconds: float = 10.0) -> CheckerLoop:
    client = WorkerClient("secret", node)
    return CheckerLoop(
        engine,
        client,
        Registry(engine),
        node=node,
        heartbeat_timeout=30,
        lease_seconds=lease_seconds,
    )


def started(engine: Engine, *, up_to: str = "run", **values: Any) -> int:
    """A task moved by the real lifecycle to ``create``, ``prepare`` or ``running``."""
    with engine.begin() as conn:
        task_id = insert_task(conn, {"task_type": "sleep", **values}, actor="test")
    transition(engine, task_id, "create", actor="test", changes={"worker": GONE})
    for trigger in ("prepare", "run")[: ("create", "prepare", "run").index(up_to)]:
        transition(engine, task_id, trigger, actor="test")
    return task_id


def row(engine: Engine, task_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(TASKS).where(TASKS.c.id == task_id)).one()


def reasons(engine: Engine, task_id: int) -> list[tuple[str, str | None]]:
    with engine.connect() as conn:
        records = conn.execute(
            select(RECORDS.c.trigger, RECORDS.c.reason)
            .where(RECORDS.c.task_id == task_id)
            .order_by(RECORDS.c.id)
        )
        return [(r.trigger, r.reason) for r in records]


def test_a_running_task_whose_heartbeat_stopped_fails_and_is_retried(engine):
    # Given a running task with a retry left and a backoff of 4 s without jitter
    task_id = started(engine, max_retry=1, retry_backoff={"initial_second": 4, "jitter": 0})
    # When the checker looks after the heartbeat timeout has passed
    now = utcnow() + timedelta(seconds=31)
    handled = checker(engine).tick(now)
    # Then the attempt failed for that reason and the task is back in line after its backoff
    assert handled == 1
    task = row(engine, task_id)
    assert (task.state, task.retry_count, task.ready_at) == ("init", 1, now + timedelta(seconds=4))
    (failed, lost), (retried, waits) = reasons(engine, task_id)[-2:]
    assert (failed, lost, retried) == ("fail", "heartbeat lost", "retry")
    assert waits == "retry 1 of 1 in 4 s: backoff 4 s * 2^0, at most 300 s, ± 0%"


def test_a_running_task_with_a_fresh_heartbeat_is_left_alone(engine):
    # Given a running task
    task_id = started(engine, max_retry=1)
    # When the checker looks before the timeout
    handled = checker(engine).tick(utcnow() + timedelta(seconds=5))
    # Then nothing changes
    assert handled == 0
    assert row(engine, task_id).state == "running"


def test_a_task_past_its_deadline_finishes_timed_out_without_a_retry(engine):
    # Given a running task with a 10 s deadline and retries left
    task_id = started(engine, max_retry=3, deadline_second=10)
    # When the checker looks 11 s after it started
    checker(engine).tick(row(engine, task_id).started_at + timedelta(seconds=11))
    # Then it is finished as timed out, not retried
    task = row(engine, task_id)
    assert (task.state, task.outcome, task.retry_count) == ("finish", "timed_out", 0)


def test_a_stored_deadline_too_large_for_a_timedelta_is_clamped_and_stops_no_other_task(engine):
    # Given a running task whose stored deadline no timedelta holds (a row older than the
    # API's bound of 366 days), and one with a 3 s deadline started after it
    absurd = started(engine, deadline_second=1e30)
    short = started(engine, deadline_second=3)
    # When the checker looks 4 s after the short one started
    checker(engine).tick(row(engine, short).started_at + timedelta(seconds=4))
    # Then the short one timed out and the absurd one runs on
    assert (row(engine, short).state, row(engine, short).outcome) == ("finish", "timed_out")
    assert row(engine, absurd).state == "running"
    # ...until 366 days, the longest deadline there is, have passed
    checker(engine).tick(row(engine, absurd).started_at + timedelta(days=366, seconds=1))
    assert row(engine, absurd).outcome == "timed_out"


def test_a_short_deadline_is_found_behind_more_than_a_sweep_of_long_ones(engine, monkeypatch):
    # Given more running tasks with long deadlines than one sweep reads, started first
    monkeypatch.setattr(checker_module, "BATCH", 3)
    long = [started(engine, deadline_second=3600) for _ in range(4)]
    short = started(engine, deadline_second=3)
    # When the checker looks 4 s after the short one started
    checker(engine).tick(row(engine, short).started_at + timedelta(seconds=4))
    # Then the short one timed out, the long ones run on
    assert row(engine, short).outcome == "timed_out"
    assert {row(engine, task).state for task in long} == {"running"}


def test_an_attempt_stuck_before_running_goes_back_in_line_without_spending_a_retry(engine):
    # Given a task without retries, created on a worker that is gone, its starting node too
    task_id = started(engine, up_to="create", max_retry=0)
    # When the checker looks after the timeout, and again
    later = utcnow() + timedelta(seconds=31)
    checker(engine).tick(later)
    checker(engine).tick(later + timedelta(seconds=1))
    # Then the worker was asked, the task postponed and requeued, its retries untouched
    task = row(engine, task_id)
    assert (task.state, task.retry_count, task.outcome) == ("init", 0, None)
    (postponed, why), (requeued, _) = reasons(engine, task_id)[-2:]
    assert (postponed, requeued) == ("postpone", "requeue")
    assert why is not None and why.startswith("stuck in create, never ran: the worker does not")


def test_a_postponed_task_is_requeued_once_its_wait_is_over(engine):
    # Given a task postponed for 5 s
    with engine.begin() as conn:
        task_id = insert_task(conn, {"task_type": "sleep"}, actor="test")
    now = utcnow()
    later = now + timedelta(seconds=5)
    transition(engine, task_id, "postpone", actor="test", changes={"ready_at": later})
    loop = checker(engine)
    # When the checker looks before and after the wait
    loop.tick(now + timedelta(seconds=1))
    before = row(engine, task_id).state
    loop.tick(later)
    # Then it is requeued only once the wait is over
    assert (before, row(engine, task_id).state) == ("postpose", "init")


def test_a_task_waiting_for_its_start_time_is_not_requeued_before_it_even_when_woken(engine):
    # Given a task stored to start in a minute, and woken at once (its ready_at set to now,
    # as the release of a lock or of a type's slot does)
    now = utcnow()
    start = now + timedelta(minutes=1)
    with engine.begin() as conn:
        task_id = insert_task(
            conn, {"task_type": "sleep", "start_time": start, "ready_at": start}, actor="test"
        )
        conn.execute(update(TASKS).where(TASKS.c.id == task_id).values(ready_at=now))
    loop = checker(engine)
    # When the checker looks before its start time, and at it
    loop.tick(now + timedelta(seconds=1))
    before = row(engine, task_id).state
    loop.tick(start)
    # Then it waits in postpose until its start time, and only then is requeued
    assert (before, row(engine, task_id).state) == ("postpose", "init")


def test_only_the_node_holding_the_sweep_lease_checks_until_the_lease_expires(engine):
    # Given two nodes' checkers (lease 0.5 s) and a task whose heartbeat stopped
    now = utcnow() + timedelta(seconds=31)
    first, second = checker(engine, "n1", 0.5), checker(engine, "n2", 0.5)
    first.tick(now)  # n1 takes the sweep lease
    task_id = started(engine, max_retry=1)
    # When the second node looks while the first holds the lease, then after it expired
    during = second.tick(now)
    state_during = row(engine, task_id).state
    assert DatabaseLocks(engine).wait(SWEEP_LEASE, timeout=10)
    after = second.tick(now)
    # Then the second node sweeps only once the lease is free, and holds it from then on
    assert (during, state_during) == (0, "running")
    assert (after, row(engine, task_id).state) == (1, "init")
    assert DatabaseLocks(engine).holder_of(SWEEP_LEASE) == "n2"
    assert first.tick(now) == 0
