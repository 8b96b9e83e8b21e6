"""TaskScheduler and Celery side by side, on this machine, in the same run.

Scenario 1 (throughput): N no-op tasks submitted, time until every one has finished.
TaskScheduler submits through ``POST /v1/tasks`` (batches of 500, as any user may) and counts
``finish/succeeded`` in the database; every transition is committed to MariaDB before it is
acknowledged. Celery sends ``noop.delay()`` N times and waits for every result.

Scenario 2 (idle round trip): tasks one after another, submit → finished, p50 and p99.
Both sides poll for the result every millisecond (Celery's ``get(interval=0.001)``).

Systems, each started fresh as real processes for each measurement:

- ``ts-mariadb-redis``: one ``taskscheduler serve`` node (MariaDB + Redis queue) and one
  ``taskworker serve``;
- ``ts-embedded``: the same on the embedded default (SQLite, database queue), scenario 1;
- ``celery-redis``: Celery 5, Redis broker and result backend, prefork concurrency 2;
- ``celery-mariadb``: Celery 5, Redis broker, MariaDB result backend.

Runs are interleaved (A B C D A B C D ...) and the median of the repetitions is reported,
with the ratio of each TaskScheduler figure to Celery's (Redis broker and backend). Results
go to ``bench/results/compare-<time>.json``.

    .venv/bin/python -m bench.compare            # N=10,000, 500 round trips, 3 repetitions
    .venv/bin/python -m bench.compare --quick    # N=1,000, 100 round trips, 1 repetition
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import urllib3
from sqlalchemy import create_engine, text

from taskscheduler.db import migrate
from tests import services
from tests.processes import PYTHON, free_port, running, wait_until

RESULTS = Path(__file__).parent / "results"
SECRET = "bench-secret"
REDIS_DB = 11  # a database number of its own, flushed before each run
HTTP = urllib3.PoolManager(maxsize=4)


# TaskScheduler


@contextmanager
def taskscheduler(redis_url: str | None, *, embedded: bool = False) -> Iterator[dict[str, Any]]:
    home = Path(tempfile.mkdtemp(prefix="bench-ts-"))
    db_url = f"sqlite:///{home / 'tasks.db'}" if embedded else services.create_mysql_database()
    migrate.upgrade(db_url)
    port, wport = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "TASK_DB_URL": db_url,
        "TASK_WORKER_SECRET": SECRET,
        "TASK_NODE_NAME": "bench",
        "TASK_LOG_LEVEL": "warning",
        **({"TASK_REDIS_URL": redis_url} if redis_url else {}),
    }
    node = [PYTHON, "-m", "taskscheduler", "serve", "--bind", f"127.0.0.1:{port}"]
    worker = [PYTHON, "-m", "taskworker", "serve", "--bind", f"127.0.0.1:{wport}"]
    worker += ["--scheduler", url, "--capacity", "256", "--name", "bench-worker"]
    engine = create_engine(db_url)
    try:
        with ExitStack() as stack:
            stack.enter_context(
                running([*node, "--workers", "2"], url=url, log_path=home / "node.log", env=env)
            )
            stack.enter_context(
                running(
                    worker,
                    url=f"http://127.0.0.1:{wport}",
                    log_path=home / "worker.log",
                    env={"TASK_WORKER_SECRET": SECRET, "TASK_LOG_LEVEL": "warning"},
                )
            )
            wait_until(lambda: _get(f"{url}/v1/workers"), 30, what="worker registered")
            yield {"url": url, "engine": engine}
    finally:
        engine.dispose()
        if not embedded:
            services.drop_mysql_database(db_url)


def ts_throughput(system: dict[str, Any], n: int) -> float:
    url, engine = system["url"], system["engine"]
    started = time.perf_counter()
    for first in range(0, n, 500):
        batch = [{"create_info": {"task_type": "noop"}} for _ in range(min(500, n - first))]
        _post(f"{url}/v1/tasks", {"tasks": batch})

    def finished() -> bool:
        with engine.connect() as conn:
            query = "SELECT COUNT(*) FROM tasks WHERE state = 'finish' AND outcome = 'succeeded'"
            return int(conn.execute(text(query)).scalar_one()) == n

    wait_until(finished, 600, interval=0.05, what=f"{n} tasks finished")
    return n / (time.perf_counter() - started)


def ts_round_trips(system: dict[str, Any], n: int) -> list[float]:
    url, took = system["url"], []
    for _ in range(n):
        started = time.perf_counter()
        task_id = _post(f"{url}/v1/task/noop", {})["task_id"]
        status = f"{url}/v1/task/noop?task_id={task_id}&action=status"
        while _get(status)["task_status"] != "finish":
            time.sleep(0.001)
        took.append(time.perf_counter() - started)
    return took


# Celery


@contextmanager
def celery(backend: str) -> Iterator[Any]:
    home = Path(tempfile.mkdtemp(prefix="bench-celery-"))
    broker = f"redis://127.0.0.1:6379/{REDIS_DB}"
    db_url = None
    if backend == "mariadb":
        db_url = services.create_mysql_database()
        backend_url = "db+" + db_url
    else:
        backend_url = broker
    os.environ["BENCH_CELERY_BROKER"] = broker
    os.environ["BENCH_CELERY_BACKEND"] = backend_url
    from bench.celery_app import app, noop

    app.conf.update(broker_url=broker, result_backend=backend_url)
    argv = [PYTHON, "-m", "celery", "-A", "bench.celery_app", "worker"]
    argv += ["--pool", "prefork", "--concurrency", "2", "--loglevel", "warning"]
    env = {"BENCH_CELERY_BROKER": broker, "BENCH_CELERY_BACKEND": backend_url}
    with (home / "celery.log").open("wb") as log_file:
        worker = subprocess.Popen(
            argv,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
        )
    try:
        wait_until(lambda: app.control.ping(timeout=0.5), 60, what="celery worker up")
        yield noop
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        if db_url:
            services.drop_mysql_database(db_url)


def celery_throughput(noop: Any, n: int) -> float:
    started = time.perf_counter()
    results = [noop.delay() for _ in range(n)]
    for result in results:
        result.get(timeout=600, interval=0.001)
    return n / (time.perf_counter() - started)


def celery_round_trips(noop: Any, n: int) -> list[float]:
    took = []
    for _ in range(n):
        started = time.perf_counter()
        noop.delay().get(timeout=60, interval=0.001)
        took.append(time.perf_counter() - started)
    return took


# The run


def _post(url: str, body: Any) -> Any:
    reply = HTTP.request(
        "POST", url, body=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert reply.status < 300, reply.data[:300]
    return json.loads(reply.data)


def _get(url: str) -> Any:
    reply = HTTP.request("GET", url)
    assert reply.status < 300, reply.data[:300]
    return json.loads(reply.data)


def _flush_redis() -> None:
    redis.Redis(db=REDIS_DB).flushdb()


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


SYSTEMS: dict[str, Callable[[], Any]] = {
    "ts-mariadb-redis": lambda: taskscheduler(f"redis://127.0.0.1:6379/{REDIS_DB}"),
    "ts-embedded": lambda: taskscheduler(None, embedded=True),
    "celery-redis": lambda: celery("redis"),
    "celery-mariadb": lambda: celery("mariadb"),
}


def measure(name: str, n: int, trips: int) -> dict[str, float]:
    _flush_redis()
    ours = name.startswith("ts-")
    with SYSTEMS[name]() as system:
        rate = (ts_throughput if ours else celery_throughput)(system, n)
        figures = {"throughput": rate}
        if name != "ts-embedded":
            took = (ts_round_trips if ours else celery_round_trips)(system, trips)
            figures["p50_ms"] = 1000 * _percentile(took, 0.50)
            figures["p99_ms"] = 1000 * _percentile(took, 0.99)
    print(f"  {name:18} " + "  ".join(f"{k} {v:8.1f}" for k, v in figures.items()), flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N=1000, 100 trips, 1 repetition")
    parser.add_argument("--tasks", type=int)
    parser.add_argument("--trips", type=int)
    parser.add_argument("--repeat", type=int)
    args = parser.parse_args()
    n = args.tasks or (1000 if args.quick else 10_000)
    trips = args.trips or (100 if args.quick else 500)
    repeat = args.repeat or (1 if args.quick else 3)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in SYSTEMS}
    for round_ in range(repeat):
        print(f"round {round_ + 1}/{repeat}: {n} tasks, {trips} round trips", flush=True)
        for name in SYSTEMS:
            runs[name].append(measure(name, n, trips))
    median = {
        name: {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
        for name, rounds in runs.items()
    }
    peer = median["celery-redis"]
    print(
        "\nmedian of", repeat, "| throughput tasks/s | p50 ms | p99 ms | throughput vs celery-redis"
    )
    for name, figures in median.items():
        ratio = figures["throughput"] / peer["throughput"]
        p50, p99 = figures.get("p50_ms", float("nan")), figures.get("p99_ms", float("nan"))
        print(f"{name:18} | {figures['throughput']:9.1f} | {p50:6.1f} | {p99:6.1f} | {ratio:5.2f}x")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"compare-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(
        json.dumps(
            {"tasks": n, "trips": trips, "repeat": repeat, "runs": runs, "median": median}, indent=2
        )
    )
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    sys.exit(main())
