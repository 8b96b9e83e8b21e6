"""The README's main job, for real: `taskscheduler standalone` runs tasks to their outcomes.

One process tree on loopback (API under gunicorn, the loops process, the worker with the
shipped plugins) over an SQLite file; the test speaks HTTP to it like any client.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from taskscheduler.db import migrate
from tests.processes import PYTHON, call, free_port, running, wait_until


@pytest.fixture
def standalone(tmp_path: Path):
    db_url = f"sqlite:///{tmp_path / 'tasks.db'}"
    migrate.upgrade(db_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [PYTHON, "-m", "taskscheduler", "standalone", "--bind", f"127.0.0.1:{port}"]
    with running(
        argv, url=base, log_path=tmp_path / "node.log", cwd=tmp_path, env={"TASK_DB_URL": db_url}
    ) as node:
        wait_until(
            lambda: "noop" in {t["task_type"] for t in call("GET", f"{base}/v1/types")},
            30,
            what="the built-in worker registered",
        )
        yield base, node


def finished(base: str, task: dict) -> dict:
    url = f"{base}/v1/task/{task['task_type']}?task_id={task['task_id']}"
    return wait_until(
        lambda: (v := call("GET", url))["task_status"] == "finish" and v,
        30,
        what=f"task {task['task_id']} finished",
    )


def test_standalone_runs_each_shipped_plugin_to_the_right_outcome(standalone):
    base, _ = standalone
    submit = {
        "noop": {},
        "sleep": {"params": {"seconds": 0.3}},
        "shell": {"params": {"argv": ["sh", "-c", "echo hello from shell"]}},
        "fail": {"params": {"message": "always"}, "process_arg": {"max_retry": 1}},
        "external": {"params": {"note": "waits for notify"}},
    }
    tasks = {kind: call("POST", f"{base}/v1/task/{kind}", body) for kind, body in submit.items()}
    # The external task waits in running until someone notifies it with its token
    ext = tasks["external"]
    ext_url = f"{base}/v1/task/external?task_id={ext['task_id']}"
    wait_until(lambda: call("GET", ext_url)["task_status"] == "running", 30, what="external runs")
    call(
        "PUT",
        f"{ext_url}&action=notify",
        {"success": True, "result": {"done": "outside"}},
        token=ext["notify_token"],
    )

    views = {kind: finished(base, task) for kind, task in tasks.items()}
    assert {k: v["outcome"] for k, v in views.items()} == {
        "noop": "succeeded",
        "sleep": "succeeded",
        "shell": "succeeded",
        "fail": "failed",
        "external": "succeeded",
    }
    assert views["shell"]["result"]["stdout_tail"] == "hello from shell\n"
    assert views["external"]["result"] == {"done": "outside"}
    assert (views["fail"]["retry_count"], views["fail"]["attempt"]) == (1, 2)
    assert views["fail"]["error"]["message"] == "always"
    # Every attempt was created exactly once: nothing ran twice
    for task in tasks.values():
        records = call("GET", f"{base}/v1/tasks/{task['task_id']}/transitions")
        creates = Counter(r["attempt"] for r in records if r["trigger"] == "create")
        assert set(creates.values()) == {1}, records


def test_a_paused_sleep_continues_and_a_cancelled_one_finishes_cancelled(standalone):
    base, _ = standalone
    paused = call("POST", f"{base}/v1/task/sleep", {"params": {"seconds": 1.5}})
    doomed = call("POST", f"{base}/v1/task/sleep", {"params": {"seconds": 30}})
    for task in (paused, doomed):
        url = f"{base}/v1/task/sleep?task_id={task['task_id']}"
        wait_until(lambda url=url: call("GET", url)["task_status"] == "running", 30)
    paused_url = f"{base}/v1/task/sleep?task_id={paused['task_id']}"
    call("PUT", f"{paused_url}&action=pause")
    assert call("GET", paused_url)["task_status"] == "pause"
    call("PUT", f"{paused_url}&action=continue")
    call("PUT", f"{base}/v1/task/sleep?task_id={doomed['task_id']}&action=cancel")
    assert finished(base, paused)["outcome"] == "succeeded"
    assert finished(base, doomed)["outcome"] == "cancelled"


def test_standalone_refuses_a_database_without_the_schema(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "taskscheduler", "standalone", "--bind", "127.0.0.1:1"],
        env={"PATH": "/usr/bin:/bin", "TASK_DB_URL": f"sqlite:///{tmp_path / 'empty.db'}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "run `taskconsole db upgrade`" in done.stderr


def test_a_failure_the_plugin_calls_final_is_not_retried(standalone):
    base, _ = standalone
    # shell fails a command that cannot start with TaskFailed(retryable=False)
    task = call(
        "POST",
        f"{base}/v1/task/shell",
        {"params": {"argv": ["/no/such/program"]}, "process_arg": {"max_retry": 3}},
    )
    view = finished(base, task)
    assert (view["outcome"], view["retry_count"], view["attempt"]) == ("failed", 0, 1)
