"""Persisting transitions: state, outcome and record together, and one winner per race."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine, func, select, text, update

from taskscheduler.db.engine import make_engine
from taskscheduler.db.tables import RECORDS, TASKS
from taskscheduler.tasks.bulk import Planned, apply_many
from taskscheduler.tasks.guard import Applied
from taskscheduler.tasks.store import insert_task
from taskscheduler.tasks.transitions import apply_trigger, transition
from taskworker.errors import ConcurrentUpdate, NotFound, TransitionRefused


def new_task(engine: Engine, **values) -> int:
    with engine.begin() as conn:
        return insert_task(conn, {"task_type": "noop", "params": {}, **values}, actor="test")


def row(engine: Engine, task_id: int):
    with engine.connect() as conn:
        return conn.execute(select(TASKS).where(TASKS.c.id == task_id)).one()


def records(engine: Engine, task_id: int) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        found = conn.execute(
            select(RECORDS.c.trigger, RECORDS.c.from_state, RECORDS.c.to_state)
            .where(RECORDS.c.task_id == task_id)
            .order_by(RECORDS.c.id)
        )
        return [tuple(r) for r in found]


def test_a_new_task_is_stored_in_init_with_its_submit_record(engine):
    task_id = new_task(engine)
    assert row(engine, task_id).state == "init"
    assert records(engine, task_id) == [("submit", "none", "init")]


def test_a_transition_writes_state_version_and_record(engine):
    # Given a task in init
    task_id = new_task(engine)
    # When a worker accepts it
    applied = transition(engine, task_id, "create", actor="scheduler", reason="picked")
    # Then the state, the version, the attempt and the record moved together
    stored = row(engine, task_id)
    assert (stored.state, stored.version, stored.attempt) == ("create", 2, 1)
    assert applied.attempt == 1
    assert records(engine, task_id)[-1] == ("create", "init", "create")


def test_the_whole_life_of_a_task_is_recorded_in_order(engine):
    task_id = new_task(engine)
    for trigger in ("create", "prepare", "run", "succeed", "finish"):
        transition(engine, task_id, trigger, actor="scheduler")
    stored = row(engine, task_id)
    assert (stored.state, stored.outcome) == ("finish", "succeeded")
    assert stored.started_at is not None and stored.finished_at is not None
    assert [r[0] for r in records(engine, task_id)] == [
        "submit",
        "create",
        "prepare",
        "run",
        "succeed",
        "finish",
    ]


def test_a_refused_transition_changes_nothing(engine):
    task_id = new_task(engine)
    with pytest.raises(TransitionRefused):
        transition(engine, task_id, "succeed", actor="test")
    stored = row(engine, task_id)
    assert (stored.state, stored.version) == ("init", 1)
    assert len(records(engine, task_id)) == 1


def test_state_and_record_roll_back_together_when_the_transaction_fails(engine):
    # Given a task, and a transaction that applies a trigger and then fails
    task_id = new_task(engine)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        apply_trigger(conn, task_id, "create", actor="test")
        raise RuntimeError("the node died before commit")
    # Then neither the state nor the record was written
    assert row(engine, task_id).state == "init"
    assert records(engine, task_id) == [("submit", "none", "init")]


def test_retry_counts_and_clears_the_worker(engine):
    task_id = new_task(engine, max_retry=1)
    for trigger in ("create", "prepare", "run", "fail"):
        transition(engine, task_id, trigger, actor="t", changes={"worker": "w1"})
    transition(engine, task_id, "retry", actor="checker")
    stored = row(engine, task_id)
    assert (stored.state, stored.retry_count, stored.worker) == ("init", 1, None)
    for trigger in ("create", "prepare", "run", "fail"):
        transition(engine, task_id, trigger, actor="t")
    with pytest.raises(TransitionRefused, match="max_retry"):
        transition(engine, task_id, "retry", actor="checker")
    assert row(engine, task_id).attempt == 2


def test_pause_remembers_and_continue_restores(engine):
    task_id = new_task(engine)
    transition(engine, task_id, "pause", actor="operator")
    assert row(engine, task_id).paused_from == "init"
    transition(engine, task_id, "continue", actor="operator")
    stored = row(engine, task_id)
    assert (stored.state, stored.paused_from) == ("init", None)


def test_a_stale_expected_version_is_a_conflict(engine):
    task_id = new_task(engine)
    transition(engine, task_id, "pause", actor="a")
    with pytest.raises(ConcurrentUpdate):
        transition(engine, task_id, "cancel", actor="b", expect_version=1)
    assert row(engine, task_id).state == "pause"


def test_a_move_decided_from_a_row_read_earlier_applies_only_if_nobody_moved_it(engine):
    # Given two tasks read by a loop in one query
    first, second = new_task(engine), new_task(engine)
    seen = {task_id: row(engine, task_id) for task_id in (first, second)}
    # And an operator pauses the second after the read
    transition(engine, second, "pause", actor="operator")
    # When the loop creates both from what it read
    with engine.begin() as conn:
        apply_trigger(conn, first, "create", actor="loop", seen=seen[first])
        with pytest.raises(ConcurrentUpdate):
            apply_trigger(conn, second, "create", actor="loop", seen=seen[second])
    # Then the first moved with its record, and the operator's pause of the second stands
    assert (row(engine, first).state, row(engine, first).attempt) == ("create", 1)
    assert records(engine, first)[-1] == ("create", "init", "create")
    assert row(engine, second).state == "pause"
    assert records(engine, second)[-1] == ("pause", "init", "pause")


def test_an_unknown_task_is_not_found(engine):
    with pytest.raises(NotFound):
        transition(engine, 424242, "create", actor="t")


def test_cancel_records_outcome_cancelled_and_finish_time(engine):
    task_id = new_task(engine)
    transition(engine, task_id, "cancel", actor="operator", reason="not needed")
    stored = row(engine, task_id)
    assert (stored.state, stored.outcome) == ("finish", "cancelled")
    assert stored.finished_at is not None


def wait_for_lock_wait(engine: Engine, connection_id: int, within_seconds: float = 10) -> None:
    """Return once MariaDB reports ``connection_id`` waiting for a row lock."""
    query = text(
        "SELECT COUNT(*) FROM information_schema.INNODB_TRX"
        " WHERE trx_mysql_thread_id = :id AND trx_state = 'LOCK WAIT'"
    )
    deadline = time.monotonic() + within_seconds
    with engine.connect() as observer:
        while observer.execute(query, {"id": connection_id}).scalar() == 0:
            assert time.monotonic() < deadline, f"connection {connection_id} never blocked"
            observer.rollback()
            time.sleep(0.01)


def test_two_connections_racing_on_one_task_have_exactly_one_winner(mysql_engine):
    """Two real MariaDB transactions read the same version; only one can move the task."""
    engine = mysql_engine
    task_id = new_task(engine)
    first, second = engine.connect(), engine.connect()
    loser: dict[str, BaseException | None] = {}

    def contend() -> None:
        try:
            apply_trigger(second, task_id, "create", actor="node-b", expect_version=1)
            second.commit()
            loser["error"] = None
        except BaseException as exc:
            loser["error"] = exc
            second.rollback()

    try:
        # Given both transactions have read the task at version 1
        first.begin()
        second.begin()
        for conn in (first, second):
            assert conn.execute(select(TASKS.c.version).where(TASKS.c.id == task_id)).scalar() == 1
        second_id = second.execute(text("SELECT CONNECTION_ID()")).scalar_one()
        # When the first moves it and, before it commits, the second tries the same move
        apply_trigger(first, task_id, "create", actor="node-a", expect_version=1)
        contender = threading.Thread(target=contend)
        contender.start()
        wait_for_lock_wait(engine, second_id)
        first.commit()
        contender.join(10)
    finally:
        first.close()
        second.close()
    # Then the second waited for the first's row lock and lost; one create is recorded
    assert isinstance(loser["error"], ConcurrentUpdate)
    stored = row(engine, task_id)
    assert (stored.state, stored.version, stored.attempt) == ("create", 2, 1)
    assert records(engine, task_id) == [("submit", "none", "init"), ("create", "init", "create")]
    with engine.connect() as conn:
        actors = conn.execute(select(RECORDS.c.actor).where(RECORDS.c.task_id == task_id))
        assert "node-b" not in set(actors.scalars())


def test_two_processes_sharing_one_sqlite_file_serialise_their_writes(sqlite_url):
    """Two engines on one file (as two processes would be): no lost update, no error."""
    from taskscheduler.db import migrate

    migrate.upgrade(sqlite_url)
    engines = [make_engine(sqlite_url), make_engine(sqlite_url)]
    task_ids = [new_task(engines[0]) for _ in range(20)]
    errors: list[BaseException] = []

    def work(engine: Engine) -> None:
        for task_id in task_ids:
            try:
                transition(engine, task_id, "create", actor="node")
            except (ConcurrentUpdate, TransitionRefused):
                pass
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with engines[0].connect() as conn:
        creates = conn.execute(
            select(func.count()).select_from(RECORDS).where(RECORDS.c.trigger == "create")
        ).scalar()
        states = set(conn.execute(select(TASKS.c.state)).scalars())
    assert creates == 20 and states == {"create"}
    for engine in engines:
        engine.dispose()


def test_a_version_moved_underneath_is_detected_between_read_and_write(engine):
    task_id = new_task(engine)
    with engine.begin() as conn:
        conn.execute(update(TASKS).where(TASKS.c.id == task_id).values(version=5))
    with pytest.raises(ConcurrentUpdate):
        transition(engine, task_id, "create", actor="t", expect_version=1)


def test_many_tasks_move_through_chained_triggers_in_one_write(engine):
    # Given three tasks in init, one of them cancelled meanwhile, and one running
    waiting = [new_task(engine) for _ in range(3)]
    transition(engine, waiting[2], "cancel", actor="operator")
    running = new_task(engine)
    for trigger in ("create", "prepare", "run"):
        transition(engine, running, trigger, actor="scheduler")
    # When the scheduler creates and prepares the waiting ones, and a report ends the run
    with engine.begin() as conn:
        started = apply_many(
            conn,
            "create",
            [
                Planned(t, changes={"worker": "w"}, reason="to w", then=("prepare",))
                for t in waiting
            ],
            actor="scheduler",
        )
        ended = apply_many(
            conn,
            "succeed",
            [
                Planned(
                    running, changes={"result": {"rows": 2}}, then=("finish",), outcome="succeeded"
                )
            ],
            actor="worker",
        )
    # Then each step of a chain is recorded, the attempt counted once, the version per step
    for task_id in waiting[:2]:
        stored = row(engine, task_id)
        assert (stored.state, stored.attempt, stored.version, stored.worker) == (
            "prepare",
            1,
            3,
            "w",
        )
        assert records(engine, task_id)[1:] == [
            ("create", "init", "create"),
            ("prepare", "create", "prepare"),
        ]
        assert isinstance(started[task_id], Applied) and started[task_id].attempt == 1
    stored = row(engine, running)
    assert (stored.state, stored.outcome, stored.result) == ("finish", "succeeded", {"rows": 2})
    assert stored.finished_at is not None
    assert records(engine, running)[-2:] == [
        ("succeed", "running", "success"),
        ("finish", "success", "finish"),
    ]
    assert ended[running].version == 6
    # And a chain the table refuses at any step leaves its task as it was
    assert isinstance(started[waiting[2]], TransitionRefused)
    assert row(engine, waiting[2]).state == "finish"


def test_a_chain_refused_at_a_later_step_writes_nothing(engine):
    task_id = new_task(engine)
    before = row(engine, task_id)
    with engine.begin() as conn:
        result = apply_many(conn, "create", [Planned(task_id, then=("run",))], actor="scheduler")
    assert isinstance(result[task_id], TransitionRefused)
    assert row(engine, task_id) == before
    assert records(engine, task_id) == [("submit", "none", "init")]
