"""kill -9 of a worker mid-run: the task is retried on the other worker and finishes once."""

from __future__ import annotations

from collections import Counter

from taskscheduler.db import migrate
from tests.processes import PYTHON, call, free_port, running, wait_until

SECRET = "crash-worker-secret"


def test_a_task_whose_worker_is_killed_is_retried_elsewhere_and_finishes_once(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'tasks.db'}"
    migrate.upgrade(db_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "TASK_DB_URL": db_url,
        "TASK_WORKER_SECRET": SECRET,
        "TASK_HEARTBEAT_TIMEOUT_SECONDS": "3",
    }
    node = [PYTHON, "-m", "taskscheduler", "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    worker_ports = [free_port(), free_port()]

    def worker(index: int) -> dict:
        argv = [
            PYTHON,
            "-m",
            "taskworker",
            "serve",
            "--bind",
            f"127.0.0.1:{worker_ports[index]}",
            "--scheduler",
            base,
            "--name",
            f"w{index}",
        ]
        return {
            "argv": argv,
            "url": f"http://127.0.0.1:{worker_ports[index]}",
            "log_path": tmp_path / f"w{index}.log",
            "env": {"TASK_WORKER_SECRET": SECRET, "TASK_WORKER_HEARTBEAT_SECONDS": "1"},
        }

    with (
        running(node, url=base, log_path=tmp_path / "node.log", env=env),
        running(**worker(0)) as w0,
        running(**worker(1)) as w1,
    ):
        wait_until(
            lambda: len(call("GET", f"{base}/v1/workers")) == 2,
            30,
            what="both workers registered",
        )
        # Given a long task running on one of the workers
        task = call(
            "POST",
            f"{base}/v1/task/sleep",
            {"params": {"seconds": 4}, "process_arg": {"max_retry": 2}},
        )
        url = f"{base}/v1/task/sleep?task_id={task['task_id']}"
        first = wait_until(
            lambda: (v := call("GET", url))["progress"]["percent"] > 0 and v,
            30,
            what="the sleep is running on its worker",
        )
        victim = w0 if first["worker"].endswith(str(worker_ports[0])) else w1
        # When that worker dies without a word
        victim.kill()
        # Then the task is retried on the other worker and succeeds, each attempt created once
        view = wait_until(lambda: (v := call("GET", url))["task_status"] == "finish" and v, 60)
        assert view["outcome"] == "succeeded"
        assert view["worker"] != first["worker"]
        records = call("GET", f"{base}/v1/tasks/{task['task_id']}/transitions")
        creates = Counter(r["attempt"] for r in records if r["trigger"] == "create")
        assert set(creates.values()) == {1}
        assert [r["reason"] for r in records if r["trigger"] == "fail"] == ["heartbeat lost"]
