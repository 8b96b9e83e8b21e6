"""The asynchronous shape for real: run returns at once, a detached job notifies a real
scheduler API (gunicorn on loopback) with the task's token, and the task finishes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

import pymysql
import pytest

from plugins.mysql.backup_async import BackupAsync
from taskscheduler.db import migrate
from taskscheduler.db.engine import make_engine
from taskscheduler.tasks.transitions import transition
from taskworker import signing
from taskworker.testing import TaskEnvironment
from tests import services
from tests.processes import call, free_port

SECRET = "async-worker-secret"
OPERATOR = "operator-token"


@pytest.fixture
def scheduler_api(tmp_path):
    """A real scheduler API process over a migrated SQLite file."""
    db_url = f"sqlite:///{tmp_path / 'tasks.db'}"
    migrate.upgrade(db_url)
    port = free_port()
    env = {
        **os.environ,
        "TASK_DB_URL": db_url,
        "TASK_WORKER_SECRET": SECRET,
        "TASK_API_TOKENS": f"{OPERATOR}:operator",
        "TASK_BIND": f"127.0.0.1:{port}",
    }
    log = open(tmp_path / "api.log", "w")  # noqa: SIM115 - closed in teardown
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "taskscheduler.api.app:get_app()",
            "-b",
            f"127.0.0.1:{port}",
            "-k",
            "gthread",
            "--threads",
            "4",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            call("GET", f"{base}/health")
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail((tmp_path / "api.log").read_text())
            time.sleep(0.1)
    yield base, db_url
    server.terminate()
    server.wait(10)
    log.close()


def register(base: str) -> None:
    body = json.dumps(
        {
            "name": "w1",
            "url": "http://127.0.0.1:9/w1",
            "capacity": 1,
            "task_types": {"mysql_backup_async": BackupAsync.describe()},
        }
    ).encode()
    headers = signing.sign(SECRET, "POST", "/v1/workers", body, worker="w1")
    request = urllib.request.Request(
        f"{base}/v1/workers",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    urllib.request.urlopen(request, timeout=10).close()


def test_an_async_backup_finishes_through_the_notify_of_its_detached_job(
    scheduler_api, tmp_path, monkeypatch
):
    base, db_url = scheduler_api
    try:
        pymysql.connect(host="127.0.0.1", user="root").close()
    except pymysql.MySQLError as exc:
        services.unavailable("MariaDB", exc)
    monkeypatch.setenv("TASK_CRED_ROOT_USER", "root")
    monkeypatch.setenv("TASK_CRED_ROOT_PASSWORD", "")
    database = f"ts_async_{uuid.uuid4().hex[:8]}"
    with pymysql.connect(host="127.0.0.1", user="root", autocommit=True) as conn:
        conn.cursor().execute(f"CREATE DATABASE `{database}`")
    try:
        # Given a task created through the API, and on a worker (as the scheduler would)
        register(base)
        target = tmp_path / "async.sql"
        params = {
            "instance": {"host": "127.0.0.1", "port": 3306},
            "credentials": "root",
            "database": database,
            "target": str(target),
        }
        task = call(
            "POST",
            f"{base}/v1/task/mysql_backup_async",
            {"params": params},
            token=OPERATOR,
        )
        engine = make_engine(db_url)
        for trigger in ("create", "prepare", "run"):
            transition(engine, task["task_id"], trigger, actor="scheduler")
        engine.dispose()
        # When its run step starts the job and returns at once
        jobs = tmp_path / "jobs"
        jobs.mkdir()
        monkeypatch.setattr(tempfile, "tempdir", str(jobs))
        notify_url = f"{base}/v1/task/mysql_backup_async?task_id={task['task_id']}&action=notify"
        env = TaskEnvironment(
            BackupAsync,
            params,
            task_id=task["task_id"],
            notify_url=notify_url,
            notify_token=task["notify_token"],
        )
        assert env.run_step() == {"started": True}
        # Then the job's notify finishes the task with the backup's result
        query = f"{base}/v1/task/mysql_backup_async?task_id={task['task_id']}"
        deadline = time.monotonic() + 30
        while (view := call("GET", query, token=OPERATOR))["task_status"] != "finish":
            assert time.monotonic() < deadline, view
            time.sleep(0.2)
        assert view["outcome"] == "succeeded"
        assert view["result"]["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
        assert list(jobs.iterdir()) == [], "the job file with the token is gone"
    finally:
        with pymysql.connect(host="127.0.0.1", user="root", autocommit=True) as conn:
            conn.cursor().execute(f"DROP DATABASE IF EXISTS `{database}`")
