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
from sqlalchemy.exc import IntegrityError

from taskconsole.cli import main
from taskscheduler.db import migrate
from taskscheduler.db.engine import make_engine
from taskscheduler.db.migrate import ROOT
from taskscheduler.db.models import Base
from taskscheduler.db.schema import check_schema
from taskscheduler.errors import SchemaOutdated

TABLES = {
    "tasks",
    "task_transitions",
    "task_logs",
    "task_edges",
    "triggers",
    "trigger_shards",
    "workers",
    "leases",
}


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


def test_triggers_and_their_instances_survive_the_upgrade_to_retiring_with_their_links(empty_url):
    # Given, at revision 0005, triggers 1 and 2 with instances, and an instance of neither
    migrate.upgrade(empty_url, "0005_retry_backoff")
    engine = make_engine(empty_url)
    try:
        with engine.begin() as conn:
            for trigger_id in (1, 2):
                conn.execute(
                    text(
                        "INSERT INTO triggers (id, name, kind, interval_second, timezone, overlap, "
                        "misfire, enabled, template, next_fire_time, failures, version, "
                        "created_at, updated_at) VALUES (:id, :name, 'timed', 60, 'UTC', 'skip', "
                        "'fire_once', 1, '{}', '2026-01-01 00:01:00', 0, 1, '2026-01-01', "
                        "'2026-01-01')"
                    ),
                    {"id": trigger_id, "name": f"t{trigger_id}"},
                )
            for task_id, trigger_id in ((1, 1), (2, 2), (3, 2), (4, None)):
                conn.execute(
                    text(
                        "INSERT INTO tasks (id, task_type, params, resources, lock_timeout, "
                        "max_retry, state, attempt, retry_count, version, progress_percent, "
                        "progress_message, kind, created_at, updated_at, important_level, "
                        "trigger_id, fire_time) VALUES (:id, 'noop', '{}', '[]', 30, 0, 'init', "
                        "1, 0, 1, 0, '', 'simple', '2026-01-01', '2026-01-01', 0, :trigger, "
                        ":fire)"
                    ),
                    {"id": task_id, "trigger": trigger_id, "fire": f"2026-01-01 00:0{task_id}:00"},
                )
        # When the database is upgraded through 0006_triggers_retired
        migrate.upgrade(empty_url, "0006_triggers_retired")
        with engine.connect() as conn:
            triggers = conn.exec_driver_sql(
                "SELECT id, name, enabled, retired_at FROM triggers ORDER BY id"
            ).all()
            links = conn.exec_driver_sql("SELECT id, trigger_id FROM tasks ORDER BY id").all()
        # Then every trigger is there, live, and every instance still names its trigger
        assert [tuple(row) for row in triggers] == [(1, "t1", 1, None), (2, "t2", 1, None)]
        assert [tuple(row) for row in links] == [(1, 1), (2, 2), (3, 2), (4, None)]
        # And the references are still enforced: an instance of no trigger is refused
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.exec_driver_sql("UPDATE tasks SET trigger_id = 9 WHERE id = 4")
        # And the newest trigger's id is not given again once its row is gone
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM tasks WHERE trigger_id = 2")
            conn.exec_driver_sql("DELETE FROM triggers WHERE id = 2")
            conn.exec_driver_sql(
                "INSERT INTO triggers (name, kind, interval_second, timezone, overlap, misfire, "
                "enabled, template, failures, version, created_at, updated_at) VALUES ('t3', "
                "'timed', 60, 'UTC', 'skip', 'fire_once', 1, '{}', 0, 1, '2026-01-01', "
                "'2026-01-01')"
            )
            newest = conn.exec_driver_sql("SELECT MAX(id) FROM triggers").scalar_one()
        assert newest == 3
    finally:
        engine.dispose()


def test_the_downgrade_from_retiring_keeps_retired_triggers_as_paused_ones(empty_url):
    # Given a live and a retired trigger, the retired one with an instance
    migrate.upgrade(empty_url, "0006_triggers_retired")
    engine = make_engine(empty_url)
    try:
        with engine.begin() as conn:
            for trigger_id, retired in ((1, None), (2, "2026-02-01")):
                conn.execute(
                    text(
                        "INSERT INTO triggers (id, name, kind, interval_second, timezone, overlap, "
                        "misfire, enabled, template, failures, version, created_at, updated_at, "
                        "retired_at) VALUES (:id, :name, 'timed', 60, 'UTC', 'skip', "
                        "'fire_once', :enabled, '{}', 0, 1, '2026-01-01', '2026-01-01', :retired)"
                    ),
                    {
                        "id": trigger_id,
                        "name": f"t{trigger_id}",
                        "enabled": retired is None,
                        "retired": retired,
                    },
                )
            conn.exec_driver_sql(
                "INSERT INTO tasks (id, task_type, params, resources, lock_timeout, max_retry, "
                "state, attempt, retry_count, version, progress_percent, progress_message, kind, "
                "created_at, updated_at, important_level, trigger_id) VALUES (1, 'noop', '{}', "
                "'[]', 30, 0, 'init', 1, 0, 1, 0, '', 'simple', '2026-01-01', '2026-01-01', 0, 2)"
            )
        # When the database is downgraded to 0005
        migrate.downgrade(empty_url, "0005_retry_backoff")
        with engine.connect() as conn:
            triggers = conn.exec_driver_sql("SELECT id, enabled FROM triggers ORDER BY id").all()
            link = conn.exec_driver_sql("SELECT trigger_id FROM tasks").scalar_one()
    finally:
        engine.dispose()
    # Then both triggers stay, the retired one paused, and its instance still names it
    assert [tuple(row) for row in triggers] == [(1, 1), (2, 0)]
    assert link == 2
    assert "trigger_shards" not in tables(empty_url)
