"""The MariaDB engine's own conversions and its read pool, over real connections."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, text

from taskscheduler.db import migrate
from taskscheduler.db.engine import make_engine, read_pool_checked_out, reading
from taskscheduler.db.tables import TASKS
from taskscheduler.tasks.guard import ROW_BY_ID


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


def _rollbacks(conn) -> int:
    return int(conn.execute(text("SHOW SESSION STATUS LIKE 'Com_rollback'")).one()[1])


def test_reads_through_the_read_pool_leave_no_transaction_to_roll_back(mysql_engine):
    # Given a read through the read pool, and one through the engine itself
    with reading(mysql_engine) as conn:
        conn.execute(select(TASKS.c.id).limit(1)).all()
    with reading(mysql_engine) as conn:  # the same pooled connection again
        after_reads = _rollbacks(conn)
        # Then the read pool's connection commits each statement by itself
        assert conn.execute(text("SELECT @@autocommit")).scalar() == 1
    with mysql_engine.connect() as conn:
        conn.execute(select(TASKS.c.id).limit(1)).all()
    with mysql_engine.connect() as conn:
        after_a_transaction = _rollbacks(conn)
    # And no ROLLBACK followed the reads, while the engine's own read had to be ended by one
    assert after_reads == 0
    assert after_a_transaction >= 1
    assert read_pool_checked_out(mysql_engine) == 0


def test_the_read_pool_goes_with_its_engine(mysql_url):
    migrate.upgrade(mysql_url)
    engine = make_engine(mysql_url)
    with reading(engine) as conn:
        session = conn.execute(text("SELECT CONNECTION_ID()")).scalar()
    engine.dispose()
    with make_engine(mysql_url).connect() as conn:
        alive = conn.execute(
            text("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = :id"),
            {"id": session},
        ).scalar()
    assert alive == 0
