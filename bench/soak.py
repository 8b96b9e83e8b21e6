"""Scenario 6: a long steady load; memory at the start and the end, errors, lost and doubled.

No-op tasks are submitted at a steady rate (by default half the throughput that the latest
``bench.compare`` run measured for the MariaDB + Redis site) to one node and one worker for
the given time. The resident memory of the node's process tree and of the worker is read
after a warm-up and at the end; every task must finish ``succeeded``, once: a task with
more than one ``run`` or ``finish`` record is doubled, one that never finished is lost.

    .venv/bin/python -m bench.soak                 # 10 minutes
    .venv/bin/python -m bench.soak --quick         # 1 minute
    .venv/bin/python -m bench.soak --rate 300
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from sqlalchemy import text

from bench.site import RESULTS, post, site, write_results
from tests.processes import wait_until

WARM_UP_SECONDS = 30.0
#: Submissions per second are sent in this many batches.
TICKS_PER_SECOND = 10


def half_the_measured_rate() -> float:
    found = sorted(RESULTS.glob("compare-*.json"))
    if not found:
        raise SystemExit("no bench.compare result yet: run it first, or give --rate")
    median = json.loads(found[-1].read_text())["median"]
    return float(median["ts-mariadb-redis"]["throughput"]) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 minute instead of 10")
    parser.add_argument("--rate", type=float, help="tasks per second (default: half measured)")
    args = parser.parse_args()
    seconds = 60.0 if args.quick else 600.0
    rate = args.rate or half_the_measured_rate()
    per_tick = max(1, round(rate / TICKS_PER_SECOND))
    submitted = errors = 0
    with site() as running:
        base = running.nodes[0]
        started = time.monotonic()
        rss_start: dict[str, int] = {}
        next_tick = started
        while (now := time.monotonic()) - started < seconds:
            if not rss_start and now - started >= WARM_UP_SECONDS:
                rss_start = running.rss_kib()
            try:
                post(
                    f"{base}/v1/tasks",
                    {"tasks": [{"create_info": {"task_type": "noop"}}] * per_tick},
                )
                submitted += per_tick
            except (AssertionError, OSError):
                errors += 1
            next_tick += 1 / TICKS_PER_SECOND
            time.sleep(max(0.0, next_tick - time.monotonic()))
        rss_end = running.rss_kib()

        def count(query: str) -> int:
            with running.engine.connect() as conn:
                return int(conn.execute(text(query)).scalar_one())

        finished = "SELECT COUNT(*) FROM tasks WHERE state = 'finish' AND outcome = 'succeeded'"
        wait_until(lambda: count(finished) >= submitted, 300, interval=1, what="drained")
        doubled = count(
            "SELECT COUNT(*) FROM (SELECT task_id FROM task_transitions "
            "WHERE `trigger` IN ('run', 'finish') GROUP BY task_id, `trigger` "
            "HAVING COUNT(*) > 1) AS twice"
        )
        lost = submitted - count(finished)
    growth = {k: 100 * (rss_end[k] - rss_start[k]) / rss_start[k] for k in rss_start}
    figures = {
        "seconds": seconds,
        "rate": rate,
        "submitted": submitted,
        "errors": errors,
        "lost": lost,
        "doubled": doubled,
        "rss_start_kib": rss_start,
        "rss_end_kib": rss_end,
        "rss_growth_percent": growth,
    }
    print("scenario 6: " + json.dumps(figures, indent=2))
    write_results("soak", figures)


if __name__ == "__main__":
    sys.exit(main())
