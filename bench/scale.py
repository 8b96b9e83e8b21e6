"""Scenario 5: the API's queries over 1,000,000 finished tasks in MariaDB, under load.

The finished tasks are written straight into the database (MariaDB's sequence engine makes a
million rows in seconds; each is what a finished run leaves: type, name, state, outcome,
times). Then, for a fixed time, 8 client threads query the API as operators and dashboards
do — filtered lists (by type and state, by outcome, by name, by parent, since a time) and
single tasks by id — while a submitter keeps noop tasks flowing through the same node. Each
query kind's p50 and p99 are reported.

    .venv/bin/python -m bench.scale            # 1,000,000 tasks, 60 s of queries
    .venv/bin/python -m bench.scale --quick    # 100,000 tasks, 15 s
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import text

from bench.site import get, percentile, post, site, write_results

CLIENTS = 8
TYPES = ("noop", "sleep", "shell", "mysql_backup")


def fill(engine, count: int) -> None:
    """``count`` finished tasks, a twentieth of them failed, created over the last 30 days."""
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tasks (task_type, task_name, important_level, resources, params, "
                "state, outcome, attempt, retry_count, max_retry, version, lock_timeout, "
                "progress_percent, progress_message, kind, created_at, updated_at, started_at, "
                "finished_at) "
                "SELECT ELT(1 + seq % 4, 'noop', 'sleep', 'shell', 'mysql_backup'), "
                "CONCAT('job-', seq % 5000), 5, '[]', '{}', 'finish', "
                "IF(seq % 20 = 0, 'failed', 'succeeded'), 1, 0, 0, 5, 30, 100, '', 'simple', "
                "t, t, t, t + INTERVAL 1 SECOND "
                # ids rise with the time of creation, as stored tasks' do
                f"FROM (SELECT seq, NOW(6) - INTERVAL (({count} - seq) * 2592000 DIV {count}) "
                f"SECOND AS t FROM seq_1_to_{count}) AS s"
            )
        )
    print(f"  {count} finished tasks written in {time.perf_counter() - started:.1f} s", flush=True)


def queries(base: str, count: int) -> dict[str, Callable[[], str]]:
    since = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return {
        "list type+state": lambda: f"{base}/v1/tasks?type={random.choice(TYPES)}&state=finish",
        "list outcome": lambda: f"{base}/v1/tasks?outcome=failed",
        "list name": lambda: f"{base}/v1/tasks?name=job-{random.randrange(5000)}",
        "list since": lambda: f"{base}/v1/tasks?since={since}",
        "list page 2": lambda: f"{base}/v1/tasks?type=noop&cursor={random.randrange(count)}",
        "task by id": lambda: (
            f"{base}/v1/task/{TYPES[(n := random.randrange(1, count)) % 4]}?task_id={n}"
        ),
    }


def measure(base: str, count: int, seconds: float) -> dict[str, dict[str, float]]:
    kinds = queries(base, count)
    took: dict[str, list[float]] = defaultdict(list)
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            name, make = random.choice(list(kinds.items()))
            started = time.perf_counter()
            get(make())
            took[name].append(time.perf_counter() - started)

    def submitter() -> None:  # the load: tasks keep flowing through the same node
        while not stop.is_set():
            post(f"{base}/v1/tasks", {"tasks": [{"create_info": {"task_type": "noop"}}] * 20})
            time.sleep(0.2)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    threads.append(threading.Thread(target=submitter))
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return {
        name: {
            "count": len(values),
            "p50_ms": 1000 * percentile(values, 0.50),
            "p99_ms": 1000 * percentile(values, 0.99),
        }
        for name, values in sorted(took.items())
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 tasks, 15 s of queries")
    args = parser.parse_args()
    count, seconds = (100_000, 15.0) if args.quick else (1_000_000, 60.0)
    with site() as running:
        fill(running.engine, count)
        figures = measure(running.nodes[0], count, seconds)
    print(f"scenario 5: {count} tasks, {CLIENTS} clients for {seconds:.0f} s")
    for name, found in figures.items():
        print(
            f"  {name:16} {found['count']:6} queries  p50 {found['p50_ms']:6.1f} ms  "
            f"p99 {found['p99_ms']:6.1f} ms"
        )
    write_results("scale", {"tasks": count, "seconds": seconds, "queries": figures})


if __name__ == "__main__":
    sys.exit(main())
