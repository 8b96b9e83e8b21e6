"""The schema comes from the migrations alone, and they run both ways on both databases."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import inspect, text

from taskconsole.cli import main
from taskscheduler.db import migrate
from taskscheduler.db.engine import make_engine
from taskscheduler.db.migrate import ROOT
from taskscheduler.db.models import Base
from taskscheduler.db.schema import check_schema
from taskscheduler.errors import SchemaOutdated

TABLES = {"tasks", "task_transitions", "task_logs", "task_edges", "triggers", "workers", "leases"}


@pytest.fixture(params=["sqlite", "mysql"])
def empty_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_round_trips(empty_url):
    migrate.upgrade(empty_url)
    assert tables(empty_url) >= TABLES
    assert migrate.current(empty_url) == migrate.head()

    migrate.downgrade(empty_url, "base")
    assert tables(empty_url) - {"alembic_version"} == set()
    assert migrate.current(empty_url) is None

    migrate.upgrade(empty_url)
    assert tables(empty_url) >= TABLES


def test_the_migrated_schema_matches_the_models_exactly(empty_url):
    migrate.upgrade(empty_url)
    engine = make_engine(empty_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_the_scheduler_refuses_an_empty_database_and_says_what_to_run(sqlite_url):
    engine = make_engine(sqlite_url)
    with pytest.raises(SchemaOutdated, match=r"has no schema.*run `taskconsole db upgrade`"):
        check_schema(engine)
    engine.dispose()


def test_the_scheduler_refuses_an_old_revision_and_accepts_head(sqlite_url):
    migrate.upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0000_older'")
    with pytest.raises(SchemaOutdated, match="revision 0000_older, this code needs"):
        check_schema(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{migrate.head()}'")
    check_schema(engine)
    engine.dispose()


def test_taskconsole_db_upgrade_migrates_the_configured_database(sqlite_url, monkeypatch):
    monkeypatch.setenv("TASK_DB_URL", sqlite_url)
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"database at revision {migrate.head()}" in result.output
    assert tables(sqlite_url) >= TABLES


def test_taskconsole_db_upgrade_reports_an_unreachable_database_with_exit_5():
    result = CliRunner().invoke(
        main, ["db", "upgrade", "--db-url", "mysql+pymysql://root@127.0.0.1:1/none"]
    )
    assert result.exit_code == 5
    assert "error: database:" in result.output
    assert "Traceback" not in result.output


def test_taskconsole_db_upgrade_names_a_bad_url_with_exit_2():
    result = CliRunner().invoke(main, ["db", "upgrade", "--db-url", "oracle://x"])
    assert result.exit_code == 2
    assert "TASK_DB_URL" in result.output


def test_taskconsole_db_upgrade_refuses_an_unknown_revision_with_exit_2(sqlite_url):
    result = CliRunner().invoke(main, ["db", "upgrade", "--db-url", sqlite_url, "-r", "nope"])
    assert result.exit_code == 2
    assert "Can't locate revision identified by 'nope'" in result.output
    assert "Traceback" not in result.output
    assert migrate.current(sqlite_url) is None


def test_taskconsole_db_downgrade_and_current_report_the_revision(sqlite_url):
    # Given a migrated database
    migrate.upgrade(sqlite_url)
    # When it is downgraded to base and asked where it is
    down = CliRunner().invoke(main, ["db", "downgrade", "--db-url", sqlite_url, "-r", "base"])
    now = CliRunner().invoke(main, ["db", "current", "--db-url", sqlite_url])
    # Then both say so, and no table but alembic's is left
    assert down.exit_code == 0 and "database at revision base (empty)" in down.output
    assert now.exit_code == 0 and f"database: empty; code needs: {migrate.head()}" in now.output
    assert tables(sqlite_url) <= {"alembic_version"}


@pytest.mark.parametrize("how", ["-x db_url", "TASK_DB_URL"])
def test_the_plain_alembic_command_takes_the_url_from_the_caller(sqlite_url, how):
    """alembic.ini holds no URL: ``-x db_url=`` or the settings (TASK_DB_URL) supply it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASK_")}
    args = [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini")]
    if how == "TASK_DB_URL":
        env["TASK_DB_URL"] = sqlite_url
    else:
        args += ["-x", f"db_url={sqlite_url}"]
    done = subprocess.run(
        [*args, "upgrade", "head"], check=False, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert migrate.current(sqlite_url) == migrate.head()


def test_callbacks_owed_before_the_upgrade_are_due_after_it(empty_url):
    # Given, at revision 0002, finished tasks with a callback: one delivered, one owed
    migrate.upgrade(empty_url, "0002_topology_keys_log_offsets")
    engine = make_engine(empty_url)
    try:
        with engine.begin() as conn:
            for task_id, state in ((1, "finish"), (2, "finish"), (3, "running")):
                conn.execute(
                    text(
                        "INSERT INTO tasks (id, task_type, params, resources, lock_timeout, "
                        "max_retry, state, attempt, retry_count, version, progress_percent, "
                        "progress_message, kind, created_at, updated_at, finished_at, "
                        "callback_url, important_level) VALUES (:id, 'noop', '{}', '[]', 30, "
                        "0, :state, 1, 0, 1, 0, '', 'simple', '2026-01-01', '2026-01-01', "
                        "'2026-01-01 10:00:00', 'http://x/cb', 0)"
                    ),
                    {"id": task_id, "state": state},
                )
            conn.exec_driver_sql(
                "INSERT INTO task_logs (task_id, attempt, level, message, at) "
                "VALUES (1, 1, 'info', 'callback delivered: HTTP 200', '2026-01-01 10:00:01')"
            )
        # When the database is upgraded
        migrate.upgrade(empty_url)
        # Then only the owed one is due, from its end
        with engine.connect() as conn:
            due = conn.exec_driver_sql("SELECT id, callback_due_at FROM tasks ORDER BY id").all()
    finally:
        engine.dispose()
    assert [(row[0], str(row[1])[:19] if row[1] else None) for row in due] == [
        (1, None),
        (2, "2026-01-01 10:00:00"),
        (3, None),
    ]


def test_children_paused_by_their_control_task_before_the_upgrade_are_marked_after_it(empty_url):
    # Given, at revision 0003, a topology (task 1) whose control task paused child 2, while an
    # operator paused child 3 and child 4 was paused by its control task, then continued
    migrate.upgrade(empty_url, "0003_callback_due")
    engine = make_engine(empty_url)
    try:
        with engine.begin() as conn:
            for task_id, control, state in (
                (1, None, "running"),
                (2, 1, "pause"),
                (3, 1, "pause"),
                (4, 1, "running"),
            ):
                conn.execute(
                    text(
                        "INSERT INTO tasks (id, task_type, params, resources, lock_timeout, "
                        "max_retry, state, attempt, retry_count, version, progress_percent, "
                        "progress_message, kind, created_at, updated_at, important_level, "
                        "control_task_id) VALUES (:id, 'noop', '{}', '[]', 30, 0, :state, 1, 0, "
                        "1, 0, '', 'simple', '2026-01-01', '2026-01-01', 0, :control)"
                    ),
                    {"id": task_id, "state": state, "control": control},
                )
            for task_id, reason in (
                (2, "control task 1 paused"),
                (3, "lunch"),
                (4, "control task 1 paused"),
            ):
                conn.execute(
                    text(
                        "INSERT INTO task_transitions (task_id, `trigger`, from_state, to_state, "
                        "actor, reason, attempt, at) VALUES (:id, 'pause', 'running', 'pause', "
                        "'a', :reason, 1, '2026-01-01')"
                        if conn.dialect.name != "sqlite"
                        else 'INSERT INTO task_transitions (task_id, "trigger", from_state, '
                        "to_state, actor, reason, attempt, at) VALUES (:id, 'pause', 'running', "
                        "'pause', 'a', :reason, 1, '2026-01-01')"
                    ),
                    {"id": task_id, "reason": reason},
                )
        # When the database is upgraded
        migrate.upgrade(empty_url)
        # Then only the child still paused by its control task is marked so
        with engine.connect() as conn:
            marked = conn.exec_driver_sql(
                "SELECT id FROM tasks WHERE paused_by_control ORDER BY id"
            ).all()
    finally:
        engine.dispose()
    assert [row[0] for row in marked] == [2]
