"""Announcing finished tasks: after the commit that finished them, never for a rollback."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from taskscheduler.finished import Finishes, note


class Recording(Finishes):
    """The announcements this process makes (no Redis: they reach local waiters only)."""

    def __init__(self) -> None:
        super().__init__(None)
        self.announced: list[list[int]] = []

    def announce(self, task_ids) -> None:
        self.announced.append(sorted(task_ids))
        super().announce(task_ids)


@pytest.fixture
def finishes(engine: Engine) -> Recording:
    found = Recording()
    found.install(engine)
    return found


def test_a_committed_finish_is_announced_once_its_connection_is_back(engine, finishes):
    with engine.begin() as conn:
        note(conn, 7)
        note(conn, 8)
        conn.execute(text("SELECT 1"))
        assert finishes.announced == []  # not before the commit
    assert finishes.announced == [[7, 8]]


def test_a_rolled_back_finish_is_never_announced(engine, finishes):
    with pytest.raises(RuntimeError), engine.begin() as conn:
        note(conn, 9)
        raise RuntimeError("the move failed")
    with engine.begin() as conn:
        conn.execute(text("SELECT 1"))
    assert finishes.announced == []


def test_what_was_committed_is_announced_though_later_work_rolled_back(engine, finishes):
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))  # the move's UPDATE begins the transaction
        note(conn, 10)
        conn.commit()
        conn.execute(text("SELECT 1"))
        note(conn, 11)
        conn.rollback()
    assert finishes.announced == [[10]]
