"""Announcing finished tasks: after the commit that finished them, never for a rollback."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, text

from taskscheduler.tasks.waiters import Finishes, note


class Recording(Finishes):
    """The announcements this process makes (no Redis: they reach local waiters only)."""

    def __init__(self) -> None:
        super().__init__(None)
        self.announced: list[list[int]] = []

    def announce(self, finished) -> None:
        self.announced.append(sorted(finished))
        super().announce(finished)


@pytest.fixture
def finishes(engine: Engine) -> Recording:
    found = Recording()
    found.install(engine)
    return found


def test_a_committed_finish_is_announced_once_its_connection_is_back(engine, finishes):
    with engine.begin() as conn:
        note(conn, 7, "succeeded")
        note(conn, 8, "succeeded")
        conn.execute(text("SELECT 1"))
        assert finishes.announced == []  # not before the commit
    assert finishes.announced == [[7, 8]]


def test_a_rolled_back_finish_is_never_announced(engine, finishes):
    with pytest.raises(RuntimeError), engine.begin() as conn:
        note(conn, 9, "succeeded")
        raise RuntimeError("the move failed")
    with engine.begin() as conn:
        conn.execute(text("SELECT 1"))
    assert finishes.announced == []


def test_what_was_committed_is_announced_though_later_work_rolled_back(engine, finishes):
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))  # the move's UPDATE begins the transaction
        note(conn, 10, "succeeded")
        conn.commit()
        conn.execute(text("SELECT 1"))
        note(conn, 11, "succeeded")
        conn.rollback()
    assert finishes.announced == [[10]]


def test_a_waiter_is_told_the_outcome_its_task_was_announced_with():
    # Given a request waiting for task 5, whose own look never sees it finished
    finishes = Finishes(None)
    told: list[str | None] = []
    waiting = threading.Thread(target=lambda: told.append(finishes.wait(5, 30, lambda: False)))
    waiting.start()
    # When task 5's end is announced (with another task's), as often as it takes the
    # waiter to have registered
    for _ in range(100):
        finishes.announce({4: "succeeded", 5: "failed"})
        waiting.join(0.05)
        if not waiting.is_alive():
            break
    # Then the waiter returns with its own task's outcome
    assert told == ["failed"]
