"""The MySQL plugins against the real MariaDB: run, rollback, bad input, secrets kept out."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pymysql
import pytest

from plugins.mysql.backup import Backup
from plugins.mysql.create_database import CreateDatabase
from plugins.mysql.create_user import CreateUser
from plugins.mysql.restore import Restore
from plugins.mysql.schema_change import SchemaChange
from taskworker import TaskFailed
from taskworker.errors import ParamsInvalid
from taskworker.testing import TaskEnvironment
from tests import services

INSTANCE = {"host": "127.0.0.1", "port": 3306}
SECRET = "s3cr3t #with 'quotes\" and spaces"


def admin() -> pymysql.Connection:
    try:
        return pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    except pymysql.MySQLError as exc:
        services.unavailable("MariaDB", exc)
        raise


@pytest.fixture
def creds(monkeypatch):
    """Credentials references resolved on the worker, as operators configure them."""
    admin().close()
    monkeypatch.setenv("TASK_CRED_ROOT_USER", "root")
    monkeypatch.setenv("TASK_CRED_ROOT_PASSWORD", "")
    monkeypatch.setenv("TASK_CRED_APP_USER", "ignored")
    monkeypatch.setenv("TASK_CRED_APP_PASSWORD", SECRET)
    return "root"


@pytest.fixture
def database(creds):
    name = f"ts_plugin_{uuid.uuid4().hex[:10]}"
    yield name
    with admin() as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def query(sql: str, *args):
    with admin() as conn, conn.cursor() as cur:
        cur.execute(sql, args or None)
        return cur.fetchall()


def test_create_database_creates_and_its_rollback_drops_it(database):
    env = TaskEnvironment(
        CreateDatabase,
        {"instance": INSTANCE, "credentials": "root", "database": database},
        task_id=41,
    )
    assert env.run_step() == {"database": database}
    assert query("SHOW DATABASES LIKE %s", database)
    assert env.run_step() == {"database": database}, "a retry finds its own database"
    env.run_step("rollback")
    assert not query("SHOW DATABASES LIKE %s", database)


def test_create_database_never_takes_or_drops_a_database_it_did_not_create(database):
    query(f"CREATE DATABASE `{database}`")
    env = TaskEnvironment(
        CreateDatabase, {"instance": INSTANCE, "credentials": "root", "database": database}
    )
    with pytest.raises(TaskFailed, match="already exists") as failed:
        env.run_step()
    assert failed.value.retryable is False
    env.run_step("rollback")
    assert query("SHOW DATABASES LIKE %s", database), "the existing database was kept"


def test_create_user_grants_and_keeps_the_password_out_of_everything(database):
    query(f"CREATE DATABASE `{database}`")
    user = f"u{uuid.uuid4().hex[:8]}"
    params = {
        "instance": INSTANCE,
        "credentials": "root",
        "user": user,
        "host": "127.0.0.1",
        "password_credentials": "app",
        "grants": [{"privileges": ["SELECT", "INSERT"], "on": f"{database}.*"}],
    }
    env = TaskEnvironment(CreateUser, params, task_id=42)
    result = env.run_step()
    try:
        # The new user can log in with the referenced password and has its grants
        login = pymysql.connect(host="127.0.0.1", user=user, password=SECRET)
        with login, login.cursor() as cur:
            cur.execute("SHOW GRANTS")
            grants = " ".join(row[0] for row in cur.fetchall())
        assert "SELECT, INSERT" in grants and database in grants
        # and the password appears in no params, result or log line
        everything = repr((params, result, env.recorded.logs, env.recorded.progress))
        assert SECRET not in everything
    finally:
        env.run_step("rollback")
    assert not query("SELECT 1 FROM mysql.user WHERE User = %s", user)


def test_create_user_refuses_to_adopt_an_existing_user(creds):
    user = f"u{uuid.uuid4().hex[:8]}"
    query(f"CREATE USER '{user}'@'%'")
    try:
        env = TaskEnvironment(
            CreateUser,
            {
                "instance": INSTANCE,
                "credentials": "root",
                "user": user,
                "password_credentials": "app",
            },
        )
        with pytest.raises(TaskFailed, match="already exists"):
            env.run_step()
        env.run_step("rollback")
        assert query("SELECT 1 FROM mysql.user WHERE User = %s", user), "not ours: kept"
    finally:
        query(f"DROP USER IF EXISTS '{user}'@'%'")


def test_schema_change_runs_the_ddl_and_rolls_back_with_the_reverse(database):
    query(f"CREATE DATABASE `{database}`")
    query(f"CREATE TABLE `{database}`.t (id INT PRIMARY KEY)")
    params = {
        "instance": INSTANCE,
        "credentials": "root",
        "database": database,
        "table": "t",
        "ddl": "ALTER TABLE t ADD COLUMN note VARCHAR(20)",
        "rollback_ddl": "ALTER TABLE t DROP COLUMN note",
    }
    env = TaskEnvironment(SchemaChange, params)
    env.run_step()
    columns = [r[0] for r in query(f"SHOW COLUMNS FROM `{database}`.t")]
    assert columns == ["id", "note"]
    env.run_step("rollback")
    assert [r[0] for r in query(f"SHOW COLUMNS FROM `{database}`.t")] == ["id"]
    assert SchemaChange().resources(params) == [f"mysql:127.0.0.1:3306/{database}.t"]


def test_a_bad_ddl_fails_without_retrying(database):
    query(f"CREATE DATABASE `{database}`")
    env = TaskEnvironment(
        SchemaChange,
        {
            "instance": INSTANCE,
            "credentials": "root",
            "database": database,
            "table": "t",
            "ddl": "ALTER TABLE missing ADD COLUMN x INT",
        },
    )
    with pytest.raises(TaskFailed, match="DDL failed") as failed:
        env.run_step()
    assert failed.value.retryable is False


def test_backup_writes_a_checksummed_dump_reports_progress_and_restores(database, tmp_path):
    # Given a database with two tables and rows
    query(f"CREATE DATABASE `{database}`")
    for table in ("a", "b"):
        query(f"CREATE TABLE `{database}`.{table} (id INT PRIMARY KEY, v VARCHAR(10))")
        query(f"INSERT INTO `{database}`.{table} VALUES (1, 'x'), (2, 'y')")
    target = tmp_path / "dump.sql"
    backup = TaskEnvironment(
        Backup,
        {"instance": INSTANCE, "credentials": "root", "database": database, "target": str(target)},
    )
    # When it is backed up
    result = backup.run_step()
    # Then the file is there with its checksum, and progress followed the tables
    assert result["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert result["tables"] == 2 and result["bytes"] == target.stat().st_size
    assert any("table a" in m for _, m in backup.recorded.progress)
    assert backup.recorded.progress[-1][0] == 100
    # And a restore into an empty database brings the rows back
    query(f"DROP TABLE `{database}`.a")
    restore = TaskEnvironment(
        Restore,
        {
            "instance": INSTANCE,
            "credentials": "root",
            "database": database,
            "source": str(target),
            "sha256": result["sha256"],
        },
    )
    restore.run_step()
    assert query(f"SELECT COUNT(*) FROM `{database}`.a") == ((2,),)
    # And rolling the backup back removes its file
    backup.run_step("rollback")
    assert not target.exists()


def test_a_failed_backup_leaves_no_partial_file(creds, tmp_path):
    target = tmp_path / "dump.sql"
    env = TaskEnvironment(
        Backup,
        {
            "instance": INSTANCE,
            "credentials": "root",
            "database": "no_such_db_here",
            "target": str(target),
        },
    )
    with pytest.raises(TaskFailed):
        env.run_step()
    assert list(Path(tmp_path).iterdir()) == []


def test_restore_refuses_a_file_that_does_not_match_its_checksum(database, tmp_path):
    source = tmp_path / "dump.sql"
    source.write_text("SELECT 1;\n")
    env = TaskEnvironment(
        Restore,
        {
            "instance": INSTANCE,
            "credentials": "root",
            "database": database,
            "source": str(source),
            "sha256": "0" * 64,
        },
    )
    with pytest.raises(TaskFailed, match="checksum"):
        env.run_step("prepare")


def test_an_unknown_credentials_reference_fails_without_retrying(database):
    env = TaskEnvironment(
        CreateDatabase, {"instance": INSTANCE, "credentials": "nobody", "database": database}
    )
    with pytest.raises(TaskFailed, match="unknown credentials reference 'nobody'") as failed:
        env.run_step()
    assert failed.value.retryable is False


@pytest.mark.parametrize(
    ("plugin", "params", "field"),
    [
        (
            CreateDatabase,
            {"instance": INSTANCE, "credentials": "root", "database": "x`; DROP"},
            "params.database",
        ),
        (
            CreateDatabase,
            {"instance": {"host": "h", "port": 70000}, "credentials": "root", "database": "d"},
            "params.instance.port",
        ),
        (
            CreateUser,
            {
                "instance": INSTANCE,
                "credentials": "root",
                "user": "u",
                "password_credentials": "app",
                "grants": [{"privileges": ["SUPER"], "on": "*.*"}],
            },
            "params.grants[0].privileges[0]",
        ),
        (
            SchemaChange,
            {"instance": INSTANCE, "credentials": "root", "database": "d", "table": "t"},
            "params.ddl",
        ),
        (Backup, {"instance": INSTANCE, "credentials": "root", "database": "d"}, "params.target"),
    ],
)
def test_bad_input_is_refused_naming_the_field(plugin, params, field):
    with pytest.raises(ParamsInvalid) as error:
        plugin.validate_params(params)
    assert error.value.field == field


def test_provision_starts_a_new_instance_and_rollback_leaves_nothing_behind(creds, tmp_path):
    # Given a directory for instances
    from plugins.mysql.provision import Provision

    env = TaskEnvironment(
        Provision, {"name": "db1", "base_dir": str(tmp_path), "root_credentials": "app"}
    )
    # When an instance is provisioned
    result = env.run_step()
    port, pid = result["port"], result["pid"]
    try:
        # Then it answers on its own port with the referenced root password
        with pymysql.connect(host="127.0.0.1", port=port, user="root", password=SECRET) as conn:
            assert conn.get_server_info()
        assert (tmp_path / "db1" / "data").is_dir()
    finally:
        # And rolling back stops it and removes everything
        env.run_step("rollback")
    assert not Path(f"/proc/{pid}").exists()
    assert not (tmp_path / "db1").exists()
    with pytest.raises(pymysql.err.OperationalError):
        pymysql.connect(host="127.0.0.1", port=port, user="root", connect_timeout=1)


def test_a_provision_that_fails_to_start_leaves_nothing_behind(creds, tmp_path):
    from plugins.mysql.provision import Provision

    # Given a port that is already taken (by the machine's own MariaDB)
    env = TaskEnvironment(
        Provision,
        {"name": "db2", "base_dir": str(tmp_path), "port": 3306, "root_credentials": "app"},
    )
    # When the new instance cannot start on it, the task fails and cleans up after itself
    with pytest.raises(TaskFailed):
        env.run_step()
    assert not (tmp_path / "db2").exists()
