"""One ``taskscheduler serve`` node as an operator runs it (its API processes under gunicorn,
as many as ``serve`` starts by default, and its loops process) with one worker serving the
shipped plugins, over a SQLite file; and what a test reads of it."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from taskscheduler.db import migrate
from taskscheduler.db.engine import make_engine
from taskscheduler.db.tables import RECORDS, TASKS
from taskworker.states import Trigger
from tests.processes import PYTHON, Server, call, free_port, running, wait_until

SECRET = "node-worker-secret-0123"


@dataclass
class Node:
    url: str
    engine: Engine
    server: Server
    worker: Server

    def submit(self, task_type: str, **body: Any) -> int:
        body.setdefault("params", {})
        return int(call("POST", f"{self.url}/v1/task/{task_type}", body)["task_id"])

    def unfinished(self) -> int:
        with self.engine.connect() as conn:
            query = select(func.count()).where(TASKS.c.state != "finish")
            return int(conn.execute(query).scalar_one())

    def wait_all_finished(self, timeout: float = 60) -> None:
        wait_until(lambda: self.unfinished() == 0, timeout, interval=0.2, what="all finished")

    def moves(self) -> dict[tuple[str, str], int]:
        """The records of moves, by trigger and outcome (``none`` for a move without one)."""
        query = (
            select(RECORDS.c.trigger, RECORDS.c.outcome, func.count())
            .where(RECORDS.c.trigger.in_(list(Trigger)))
            .group_by(RECORDS.c.trigger, RECORDS.c.outcome)
        )
        with self.engine.connect() as conn:
            return {(t, o or "none"): int(n) for t, o, n in conn.execute(query)}

    def scrape(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as answer:
            return str(answer.read().decode())


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def command_line(pid: int) -> bytes:
    """How ``pid`` was started (empty once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def environment(pid: int) -> dict[str, str]:
    """The environment ``pid`` was started with."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    pairs = (item.decode(errors="replace").partition("=") for item in raw if item)
    return {name: value for name, _, value in pairs}


@contextmanager
def serving_node(folder: Path, *, capacity: int = 4) -> Iterator[Node]:
    """The node in open mode (loopback, no tokens) and its worker, ``capacity`` steps wide."""
    db_url = f"sqlite:///{folder / 'tasks.db'}"
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    port, worker_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"TASK_DB_URL": db_url, "TASK_WORKER_SECRET": SECRET, "TASK_NODE_NAME": "node0"}
    node_argv = [PYTHON, "-m", "taskscheduler", "serve", "--bind", f"127.0.0.1:{port}"]
    worker_argv = [PYTHON, "-m", "taskworker", "serve", "--bind", f"127.0.0.1:{worker_port}"]
    worker_argv += ["--scheduler", url, "--name", "w1", "--capacity", str(capacity)]
    worker_env = {"TASK_WORKER_SECRET": SECRET, "TASK_WORKER_HEARTBEAT_SECONDS": "1"}
    try:
        with (
            running(node_argv, url=url, log_path=folder / "node.log", env=env) as server,
            running(
                worker_argv,
                url=f"http://127.0.0.1:{worker_port}",
                log_path=folder / "worker.log",
                env=worker_env,
            ) as worker,
        ):
            wait_until(lambda: call("GET", f"{url}/v1/workers"), 30, what="the worker registered")
            yield Node(url, engine, server, worker)
    finally:
        engine.dispose()
