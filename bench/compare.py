"""TaskScheduler and Celery side by side, on this machine, in the same run.

Scenario 1 (throughput): N no-op tasks submitted, time until every one has finished.
TaskScheduler submits through ``POST /v1/tasks`` (batches of 500, as any user may) and counts
``finish/succeeded`` in the database; every transition is committed to MariaDB before it is
acknowledged. Celery sends the ``noop`` task N times and waits for every result.

Scenario 2 (idle round trip): tasks one after another, submit → finished, p50 and p99.
Each side waits for the result as its users would: TaskScheduler's client asks for the
task's status with ``wait=60`` (the API answers the moment the task finishes); Celery's
``get(interval=0.001)`` (with Redis, Celery is told of the result; with MariaDB it polls the
table every millisecond).

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
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import create_engine, text

from bench.site import REDIS_URL, get, percentile, post, site, write_results
from tests import services
from tests.processes import PYTHON, wait_until

# TaskScheduler


@contextmanager
def taskscheduler(*, embedded: bool = False) -> Iterator[dict[str, Any]]:
    with site(use_redis=not embedded, embedded=embedded) as running:
        yield {"url": running.nodes[0], "engine": running.engine}


def ts_throughput(system: dict[str, Any], n: int) -> float:
    url, engine = system["url"], system["engine"]
    started = time.perf_counter()
    for first in range(0, n, 500):
        batch = [{"create_info": {"task_type": "noop"}} for _ in range(min(500, n - first))]
        post(f"{url}/v1/tasks", {"tasks": batch})

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
        task_id = post(f"{url}/v1/task/noop", {})["task_id"]
        status = f"{url}/v1/task/noop?task_id={task_id}&action=status&wait=60"
        while get(status)["task_status"] != "finish":
            pass  # not finished within the wait: ask again
        took.append(time.perf_counter() - started)
    return took


# Celery


@contextmanager
def celery(backend: str) -> Iterator[Any]:
    home = Path(tempfile.mkdtemp(prefix="bench-celery-"))
    broker = REDIS_URL
    db_url = None
    if backend == "mariadb":
        db_url = services.create_mysql_database()
        backend_url = "db+" + db_url
    else:
        backend_url = broker
    from celery import Celery

    # a client of its own per run: a Celery app keeps the result backend it first made
    app = Celery("bench-client", broker=broker, backend=backend_url)
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
        yield {"send": lambda: app.send_task("noop"), "db_url": db_url}
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        if db_url:
            services.drop_mysql_database(db_url)


def celery_throughput(system: dict[str, Any], n: int) -> float:
    """With Redis, every result is awaited as a Celery user would; with MariaDB, the stored
    results are counted in the database, as for TaskScheduler (awaiting them one by one
    polls the database per result and measures the client, not the system)."""
    started = time.perf_counter()
    results = [system["send"]() for _ in range(n)]
    if system["db_url"] is None:
        for result in results:
            result.get(timeout=600, interval=0.001)
    else:
        engine = create_engine(system["db_url"])
        query = text("SELECT COUNT(*) FROM celery_taskmeta WHERE status = 'SUCCESS'")

        def stored() -> bool:
            with engine.connect() as conn:
                return int(conn.execute(query).scalar_one()) >= n

        wait_until(stored, 600, interval=0.05, what=f"{n} results stored")
        engine.dispose()
    return n / (time.perf_counter() - started)


def celery_round_trips(system: dict[str, Any], n: int) -> list[float]:
    took = []
    for _ in range(n):
        started = time.perf_counter()
        system["send"]().get(timeout=60, interval=0.001)
        took.append(time.perf_counter() - started)
    return took


# The run


SYSTEMS: dict[str, Callable[[], Any]] = {
    "ts-mariadb-redis": taskscheduler,
    "ts-embedded": lambda: taskscheduler(embedded=True),
    "celery-redis": lambda: celery("redis"),
    "celery-mariadb": lambda: celery("mariadb"),
}


def measure(name: str, n: int, trips: int) -> dict[str, float]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    ours = name.startswith("ts-")
    with SYSTEMS[name]() as system:
        rate = (ts_throughput if ours else celery_throughput)(system, n)
        figures = {"throughput": rate}
        if name != "ts-embedded":
            took = (ts_round_trips if ours else celery_round_trips)(system, trips)
            figures["p50_ms"] = 1000 * percentile(took, 0.50)
            figures["p99_ms"] = 1000 * percentile(took, 0.99)
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
    peer, db_peer = median["celery-redis"], median["celery-mariadb"]
    print(
        "\nmedian of",
        repeat,
        "| throughput tasks/s | p50 ms | p99 ms | throughput vs celery-redis"
        " | p99 vs celery-mariadb",
    )
    for name, figures in median.items():
        ratio = figures["throughput"] / peer["throughput"]
        p50, p99 = figures.get("p50_ms", float("nan")), figures.get("p99_ms", float("nan"))
        print(
            f"{name:18} | {figures['throughput']:9.1f} | {p50:6.1f} | {p99:6.1f} | {ratio:5.2f}x"
            f" | {p99 / db_peer['p99_ms']:5.2f}x"
        )
    write_results(
        "compare",
        {"tasks": n, "trips": trips, "repeat": repeat, "runs": runs, "median": median},
    )


if __name__ == "__main__":
    sys.exit(main())
