"""A worker that is not built on taskworker (only the standard library and the documented
contract) runs tasks for a real `taskscheduler serve` node."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from taskscheduler.db import migrate
from tests.processes import PYTHON, call, free_port, running, wait_until

SECRET = "contract-worker-secret"
WORKER = Path(__file__).with_name("stdlib_worker.py")


def test_a_stdlib_worker_written_from_the_contract_runs_scheduled_tasks(tmp_path):
    # Given a scheduler node (no built-in worker) and the stdlib worker registered with it
    db_url = f"sqlite:///{tmp_path / 'tasks.db'}"
    migrate.upgrade(db_url)
    port, worker_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"TASK_DB_URL": db_url, "TASK_WORKER_SECRET": SECRET}
    node_argv = [
        PYTHON,
        "-m",
        "taskscheduler",
        "serve",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
    ]
    worker_argv = [PYTHON, str(WORKER), str(worker_port), base, SECRET]
    with (
        running(node_argv, url=base, log_path=tmp_path / "node.log", env=env),
        running(
            worker_argv, url=f"http://127.0.0.1:{worker_port}", log_path=tmp_path / "worker.log"
        ),
    ):
        wait_until(
            lambda: any(t["task_type"] == "upper" for t in call("GET", f"{base}/v1/types")),
            30,
            what="the stdlib worker registered",
        )
        # When tasks of its type are submitted
        ids = [
            call("POST", f"{base}/v1/task/upper", {"params": {"text": text}})["task_id"]
            for text in ("abc", "mysql")
        ]
        # Then the scheduler drives them through it to their results
        for task_id, expected in zip(ids, ("ABC", "MYSQL"), strict=True):
            url = f"{base}/v1/task/upper?task_id={task_id}"
            view = wait_until(
                lambda url=url: (v := call("GET", url))["task_status"] == "finish" and v,
                30,
                what=f"task {task_id} finished",
            )
            assert (view["outcome"], view["result"]) == ("succeeded", {"text": expected})
        # And a call with a bad signature is refused by the stdlib worker, as the contract says
        request = urllib.request.Request(
            f"http://127.0.0.1:{worker_port}/v1/task/upper", data=b"{}", method="POST"
        )
        try:
            urllib.request.urlopen(request, timeout=5)
            raise AssertionError("an unsigned call was accepted")
        except urllib.error.HTTPError as refused:
            assert refused.code == 401
