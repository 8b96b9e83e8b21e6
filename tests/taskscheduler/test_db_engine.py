"""The MariaDB engine's own conversions, over a real connection."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from taskscheduler.lifecycle import ROW_BY_ID, TASKS


def test_times_come_back_as_stored_to_the_microsecond_in_utc(mysql_engine):
    at = datetime(2026, 11, 23, 10, 4, 5, 7, tzinfo=UTC)
    with mysql_engine.begin() as conn:
        task_id = conn.execute(
            TASKS.insert().values(
                task_type="noop", state="init", created_at=at, updated_at=at, started_at=at
            )
        ).inserted_primary_key[0]
        row = conn.execute(ROW_BY_ID, {"task_id": task_id}).one()
    assert (row.created_at, row.started_at, row.finished_at) == (at, at, None)
    assert row.created_at.tzinfo is UTC


def test_a_whole_second_and_a_zero_date_read_as_pymysql_reads_them(mysql_engine):
    with mysql_engine.connect() as conn:
        whole, zero = conn.execute(
            text(
                "SELECT CAST('2026-01-02 03:04:05' AS DATETIME), "
                "CAST('0000-00-00 00:00:00' AS DATETIME)"
            )
        ).one()
    assert whole == datetime(2026, 1, 2, 3, 4, 5)
    assert zero == "0000-00-00 00:00:00"  # no such date: the text, not an error
