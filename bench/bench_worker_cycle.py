"""Requests/s of a sequential create + prepare + running + status cycle against one worker.

Starts a real scheduler API (SQLite) and a real ``taskworker serve`` under gunicorn on
loopback ports, then drives ``noop`` tasks through the worker with the signed client the
scheduler uses, one request after another. The worker's reports go to the scheduler in the
background (they name tasks it does not store, so it answers 404 per item: the same work).

    .venv/bin/python -m bench.bench_worker_cycle [cycles]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from taskscheduler.db import migrate
from taskworker.client import SignedClient
from tests.processes import PYTHON, free_port, running

SECRET = "bench-worker-secret"


def main(cycles: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    db_url = f"sqlite:///{home / 'tasks.db'}"
    migrate.upgrade(db_url)
    sport, wport = free_port(), free_port()
    scheduler = [PYTHON, "-m", "gunicorn", "-k", "gthread", "--threads", "8", "-w", "1"]
    scheduler += ["-b", f"127.0.0.1:{sport}", "taskscheduler.api.app:get_app()"]
    senv = {"TASK_DB_URL": db_url, "TASK_WORKER_SECRET": SECRET}
    worker = [PYTHON, "-m", "taskworker", "serve", "--bind", f"127.0.0.1:{wport}"]
    worker += ["--scheduler", f"http://127.0.0.1:{sport}", "--capacity", "8", "--name", "bench"]
    wenv = {"TASK_WORKER_SECRET": SECRET}
    with (
        running(scheduler, url=f"http://127.0.0.1:{sport}", log_path=home / "s.log", env=senv),
        running(worker, url=f"http://127.0.0.1:{wport}", log_path=home / "w.log", env=wenv),
    ):
        client = SignedClient(f"http://127.0.0.1:{wport}", SECRET, name="bench")
        laps = []
        started = time.perf_counter()
        for task_id in range(1, cycles + 1):
            lap = time.perf_counter()
            body = {"params": {}, "dispatch": {"task_id": task_id, "attempt": 1}}
            client.request("POST", "/v1/task/noop", body=body)
            for action in ("prepare", "running"):
                query = {"task_id": task_id, "action": action, "attempt": 1}
                client.request("PUT", "/v1/task/noop", query=query)
            client.request("GET", "/v1/task/noop", query={"task_id": task_id, "action": "status"})
            laps.append(time.perf_counter() - lap)
        elapsed = time.perf_counter() - started
    laps.sort()
    print(
        f"{cycles} cycles in {elapsed:.2f} s: {cycles / elapsed:.0f} cycles/s, "
        f"{4 * cycles / elapsed:.0f} requests/s"
    )
    print(
        f"cycle p50 {statistics.median(laps) * 1000:.2f} ms, "
        f"p99 {laps[int(len(laps) * 0.99) - 1] * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
