"""What one decision and one persisted transition cost (the figures in docs/performance.md).

    python bench/bench_states.py [--mysql-url URL] [-n N]

Compares deciding a move on the shared machine (what the code does) with building a
``transitions.Machine`` per task and with ``add_model`` on a shared machine, then times
``apply_trigger`` + commit per transition on SQLite and MariaDB.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from transitions import Machine

from taskscheduler.db import migrate
from taskscheduler.db.engine import make_engine
from taskscheduler.lifecycle import insert_task, transition
from taskworker.states import MACHINE, State, decide


def per_call_us(fn: Callable[[], object], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1e6


def machine_per_task() -> None:
    class Model:
        pass

    Machine(
        model=Model(),
        states=[s.value for s in State],
        transitions=[{"trigger": "create", "source": "init", "dest": "create"}],
        initial="init",
        auto_transitions=False,
    )


def add_model_shared() -> None:
    class Model:
        pass

    model = Model()
    MACHINE.add_model(model, initial="init")
    MACHINE.remove_model(model)


def transitions_per_second(url: str, tasks: int) -> float:
    migrate.upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        row = {"task_type": "noop", "params": {}}
        ids = [insert_task(conn, row, actor="bench") for _ in range(tasks)]
    started = time.perf_counter()
    for task_id in ids:
        for trigger in ("create", "prepare", "run", "succeed", "finish"):
            transition(engine, task_id, trigger, actor="bench")
    elapsed = time.perf_counter() - started
    engine.dispose()
    return tasks * 5 / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mysql-url", default="mysql+pymysql://root@127.0.0.1:3306/test")
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("--tasks", type=int, default=300)
    args = parser.parse_args()
    rows = [
        ("decide() on the shared machine", per_call_us(lambda: decide("init", "create"), args.n)),
        ("Machine built per task", per_call_us(machine_per_task, args.n // 20)),
        ("add_model + remove_model, shared", per_call_us(add_model_shared, args.n // 10)),
    ]
    print(f"{'what':<40} {'µs per call':>12}")
    for name, micros in rows:
        print(f"{name:<40} {micros:>12.1f}")
    sqlite = f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    print(f"{'what':<40} {'transitions/s':>12}")
    for name, url in (("apply_trigger + commit, SQLite", sqlite), ("... MariaDB", args.mysql_url)):
        print(f"{name:<40} {transitions_per_second(url, args.tasks):>12.0f}")


if __name__ == "__main__":
    main()
