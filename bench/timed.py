"""Scenarios 3 and 4: timed tasks at scale on two nodes, and the Producer's failover.

3. N cron triggers (``* * * * *``: all due at the same second, the worst case) fire for M
   minutes on two ``taskscheduler serve`` nodes (MariaDB + Redis) with one worker: the fire
   lag of every instance (its creation minus its fire time; and its run's start minus it),
   p50/p99/max, and the fire times missed or made twice.
4. One trigger firing every second; the node that fires it is killed with SIGKILL: the time
   from the kill until the other node fires again, against the lease time.

    .venv/bin/python -m bench.timed            # N=10,000, M=3
    .venv/bin/python -m bench.timed --quick    # N=1,000, M=1
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from bench.site import Site, percentile, post, site, write_results

LEASE_SECONDS = 10.0


def cron_triggers(cluster: Site, count: int) -> None:
    body = {"cron": "* * * * *", "template": {"create_info": {"task_type": "noop"}}}
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: post(f"{cluster.nodes[i % 2]}/v1/triggers", {**body, "name": f"c{i}"}),
                range(count),
            )
        )


def scenario_timed(cluster: Site, count: int, minutes: int) -> dict[str, Any]:
    cron_triggers(cluster, count)
    now = datetime.now(UTC)
    first = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    last = first + timedelta(minutes=minutes - 1)
    print(f"  {count} triggers; measuring the fires from {first:%H:%M} to {last:%H:%M}", flush=True)
    time.sleep(max(0.0, (last - datetime.now(UTC)).total_seconds()) + 30)
    with cluster.engine.connect() as conn:
        conn.execute(text("UPDATE triggers SET enabled = 0"))
        conn.commit()
        rows = conn.execute(
            text(
                "SELECT trigger_id, fire_time, created_at, started_at FROM tasks "
                "WHERE fire_time BETWEEN :first AND :last"
            ),
            {"first": first.replace(tzinfo=None), "last": last.replace(tzinfo=None)},
        ).all()
    made = {(r.trigger_id, r.fire_time) for r in rows}
    lag = [(r.created_at - r.fire_time).total_seconds() for r in rows]
    run_lag = [(r.started_at - r.fire_time).total_seconds() for r in rows if r.started_at]
    return {
        "triggers": count,
        "minutes": minutes,
        "expected": count * minutes,
        "made": len(rows),
        "missed": count * minutes - len(made),
        "doubled": len(rows) - len(made),
        "lag_p50_s": percentile(lag, 0.50),
        "lag_p99_s": percentile(lag, 0.99),
        "lag_max_s": max(lag, default=float("nan")),
        "run_lag_p50_s": percentile(run_lag, 0.50),
        "run_lag_p99_s": percentile(run_lag, 0.99),
    }


def scenario_failover(cluster: Site) -> dict[str, Any]:
    body = {
        "name": "heartbeat",
        "interval_second": 1,
        "overlap": "allow",
        "template": {"create_info": {"task_type": "noop"}},
    }
    trigger_id = post(f"{cluster.nodes[0]}/v1/triggers", body)["trigger_id"]
    time.sleep(5)
    owner = cluster.firing_node(trigger_id)
    killed = datetime.now(UTC)
    cluster.kill_node(owner)
    time.sleep(LEASE_SECONDS + 10)
    with cluster.engine.connect() as conn:
        after = conn.execute(
            text(
                "SELECT MIN(r.at) FROM task_transitions r JOIN tasks t ON t.id = r.task_id "
                "WHERE t.trigger_id = :trigger AND r.trigger = 'submit' AND r.at > :killed"
            ),
            {"trigger": trigger_id, "killed": killed.replace(tzinfo=None)},
        ).scalar_one()
        times = list(
            conn.execute(
                text("SELECT fire_time FROM tasks WHERE trigger_id = :trigger ORDER BY fire_time"),
                {"trigger": trigger_id},
            ).scalars()
        )
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    took = (after.replace(tzinfo=UTC) - killed).total_seconds() if after else float("inf")
    return {
        "lease_seconds": LEASE_SECONDS,
        "takeover_s": took,
        "fire_times_missed": sum(round(g) - 1 for g in gaps if g > 1.5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 triggers for 1 minute")
    args = parser.parse_args()
    count, minutes = (1000, 1) if args.quick else (10_000, 3)
    figures: dict[str, Any] = {}
    with site(nodes=2, lease_seconds=LEASE_SECONDS) as cluster:
        print("scenario 3: timed tasks", flush=True)
        figures["timed"] = scenario_timed(cluster, count, minutes)
        print("  " + json.dumps(figures["timed"]), flush=True)
        print("scenario 4: failover of the Producer", flush=True)
        figures["failover"] = scenario_failover(cluster)
        print("  " + json.dumps(figures["failover"]), flush=True)
    write_results("timed", figures)


if __name__ == "__main__":
    sys.exit(main())
