"""Every move the task writer commits is counted once, by trigger and outcome, whoever wrote
it (one task, a batch, a new task's submit), and a move that did not commit never is."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import Engine

from taskscheduler.tasks.bulk import Planned, apply_many
from taskscheduler.tasks.store import insert_task
from taskscheduler.tasks.transitions import apply_trigger, count_moves, transition

Moves = Counter[tuple[str, str | None]]


@pytest.fixture
def counted(engine: Engine) -> Moves:
    """What the writer told, for the moves written through ``engine``."""
    moves: Moves = Counter()
    count_moves(engine, moves.update)
    return moves


def new_task(engine: Engine) -> int:
    with engine.begin() as conn:
        return insert_task(conn, {"task_type": "noop", "params": {}}, actor="test")


def test_each_committed_move_counts_once_by_trigger_and_outcome(engine, counted: Moves):
    # Given two tasks submitted
    first, second = new_task(engine), new_task(engine)
    # When one is started and succeeds, and the other is cancelled, in a batch
    for trigger in ("create", "prepare", "run"):
        transition(engine, first, trigger, actor="scheduler")
    with engine.begin() as conn:
        apply_many(
            conn, "succeed", [Planned(first, then=("finish",), outcome="succeeded")], actor="w"
        )
        apply_many(conn, "cancel", [Planned(second)], actor="operator")
    # Then every move counts once, the ends with their outcome
    assert counted == Counter(
        {
            ("submit", None): 2,
            ("create", None): 1,
            ("prepare", None): 1,
            ("run", None): 1,
            ("succeed", None): 1,
            ("finish", "succeeded"): 1,
            ("cancel", "cancelled"): 1,
        }
    )


def test_a_move_rolled_back_never_counts(engine, counted: Moves):
    # Given a task
    task_id = new_task(engine)
    counted.clear()
    # When its move is written and the transaction then fails
    with pytest.raises(RuntimeError), engine.begin() as conn:
        apply_trigger(conn, task_id, "create", actor="scheduler")
        raise RuntimeError("after the write, before the commit")
    # Then nothing counts, and the next committed move counts alone
    assert counted == Counter()
    transition(engine, task_id, "cancel", actor="operator")
    assert counted == Counter({("cancel", "cancelled"): 1})


def test_a_move_undone_with_its_savepoint_never_counts(engine, counted: Moves):
    # Given two tasks
    kept, undone = new_task(engine), new_task(engine)
    counted.clear()
    # When one move commits and the other is undone by its savepoint, in one transaction
    with engine.begin() as conn:
        apply_trigger(conn, kept, "create", actor="scheduler")
        nested = conn.begin_nested()
        apply_trigger(conn, undone, "create", actor="scheduler")
        nested.rollback()
        with conn.begin_nested():
            apply_trigger(conn, undone, "pause", actor="operator")
    # Then the moves that committed count, the undone one does not
    assert counted == Counter({("create", None): 1, ("pause", None): 1})


def test_a_connection_closed_without_commit_counts_nothing_later(engine, counted: Moves):
    # Given a task, and a move written on a connection closed without committing
    task_id = new_task(engine)
    counted.clear()
    with engine.connect() as conn:
        apply_trigger(conn, task_id, "create", actor="scheduler")
    # When the next transaction commits a move
    transition(engine, task_id, "pause", actor="operator")
    # Then only that one counts
    assert counted == Counter({("pause", None): 1})


def test_the_newest_counter_of_an_engine_is_the_one_told(engine, counted: Moves):
    # Given a second node built over the same pool
    newer: Moves = Counter()
    count_moves(engine, newer.update)
    # When a task is submitted
    new_task(engine)
    # Then it counts once, for the newer one only
    assert (newer, counted) == (Counter({("submit", None): 1}), Counter())
