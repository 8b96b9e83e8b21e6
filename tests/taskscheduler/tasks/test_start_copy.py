"""The copy of a task queued with it holds what a read of the task would give the loop."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from taskscheduler.tasks.start_copy import READ_TO_START, from_copy, start_copy
from taskscheduler.tasks.store import insert_task_row


def test_a_copy_reads_as_the_row_it_was_made_from(engine: Engine):
    # Given a task stored with every kind of column a start reads set
    values = {
        "task_type": "shell",
        "task_name": "nächtlich ✓",
        "important_level": 7,
        "http_url": "http://127.0.0.1:9/",
        "resources": ["mysql:db-42"],
        "params": {"argv": ["echo", "x"], "env": {"A": "1"}, "timeout": 2.5},
        "target": {"host": "db-42", "port": 3306},
        "deadline_second": 12.5,
        "lock_timeout": 0.25,
        "max_retry": 2,
        "ready_at": datetime(2026, 1, 2, 3, 4, 5, 60, tzinfo=UTC),
    }
    with engine.begin() as conn:
        stored = insert_task_row(conn, values, actor="test")
        read = conn.execute(READ_TO_START, {"ids": [stored.id]}).one()
    # When the API's copy of it is made and read back by the loop
    copy = from_copy(start_copy(stored))
    # Then every column reads as the database gives it, times as aware UTC datetimes
    for name in read._fields:
        assert getattr(copy, name) == getattr(read, name), name
    assert copy.ready_at.tzinfo is not None
