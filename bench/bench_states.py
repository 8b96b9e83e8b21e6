"""What one decision and one persisted transition cost.

    python bench/bench_states.py [--mysql-server URL] [-n N] [--tasks N]

Compares deciding a move on the shared machine (what the code does) with building a
``transitions.Machine`` per task and with ``add_model`` on a shared machine, then times
``apply_trigger`` + commit per transition on SQLite and on MariaDB (in a database of its
own, dropped afterwards). Raw figures for design notes; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from transitions import Machine

from taskscheduler.db import migrate
from taskscheduler.db.engine import make_engine
from taskscheduler.tasks.store import insert_task
from taskscheduler.tasks.transitions import transition
from taskworker.states import MACHINE, State, _machine_transitions, decide


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
        transitions=_machine_transitions(),  # the whole table, as a per-task machine needs
        initial="init",
        auto_transitions=False,
        send_event=True,
    )


def add_model_shared() -> None:
    class Model:
        pass

    model = Model()
    MACHINE.add_model(model, initial="init")
    MACHINE.remove_model(model)


def transition_us(url: str, tasks: int) -> float:
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
    return elapsed / (tasks * 5) * 1e6


@contextmanager
def scratch_mysql_database(server_url: str) -> Iterator[str]:
    """A database that exists for one run, so the figures never touch anyone's tables."""
    name = f"ts_bench_{uuid.uuid4().hex[:12]}"
    server = create_engine(server_url)
    with server.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with server.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mysql-server", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("--tasks", type=int, default=300)
    args = parser.parse_args()
    rows = [
        ("decide() on the shared machine", per_call_us(lambda: decide("init", "create"), args.n)),
        ("Machine built per task", per_call_us(machine_per_task, args.n // 20)),
        ("add_model + remove_model, shared", per_call_us(add_model_shared, args.n // 10)),
    ]
    with tempfile.TemporaryDirectory() as scratch:
        sqlite = f"sqlite:///{Path(scratch) / 'bench.db'}"
        rows.append(("apply_trigger + commit, SQLite", transition_us(sqlite, args.tasks)))
    with scratch_mysql_database(args.mysql_server) as mysql:
        rows.append(("apply_trigger + commit, MariaDB", transition_us(mysql, args.tasks)))
    print(f"{'what':<40} {'µs each':>10} {'per second':>12}")
    for name, micros in rows:
        print(f"{name:<40} {micros:>10.1f} {1e6 / micros:>12,.0f}")


if __name__ == "__main__":
    main()
