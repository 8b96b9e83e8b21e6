"""What every benchmark stands on: a TaskScheduler site started as real processes.

``site()`` starts ``nodes`` times ``taskscheduler serve`` on one database (a fresh MariaDB
database, or an SQLite file for the embedded default) and, with Redis, one Redis database of
the benchmarks' own, plus one ``taskworker serve`` with the shipped plugins; everything is
stopped and dropped afterwards.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import urllib3
from sqlalchemy import Engine, create_engine, text

from taskscheduler.db import migrate
from tests import services
from tests.processes import PYTHON, Server, free_port, running, wait_until

RESULTS = Path(__file__).parent / "results"
SECRET = "bench-worker-secret"
REDIS_DB = 11  # a database number of its own, flushed before each run
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
HTTP = urllib3.PoolManager(maxsize=16)


@dataclass
class Site:
    nodes: list[str]
    engine: Engine
    servers: list[Server] = field(default_factory=list)
    worker: Server | None = None

    def firing_node(self, trigger_id: int) -> int:
        """The index of the node whose Producer made the trigger's latest instance."""
        with self.engine.connect() as conn:
            actor = conn.execute(
                text(
                    "SELECT r.actor FROM task_transitions r JOIN tasks t ON t.id = r.task_id "
                    "WHERE t.trigger_id = :trigger AND r.trigger = 'submit' "
                    "ORDER BY r.id DESC LIMIT 1"
                ),
                {"trigger": trigger_id},
            ).scalar_one()
        return int(actor.removeprefix("producer:bench"))

    def kill_node(self, index: int) -> None:
        self.servers[index].kill()

    def rss_kib(self) -> dict[str, int]:
        """Resident memory of each node's process tree and of the worker, in KiB."""
        found = {f"node{i}": _tree_rss(s.pid) for i, s in enumerate(self.servers)}
        if self.worker is not None:
            found["worker"] = _tree_rss(self.worker.pid)
        return found


@contextmanager
def site(
    *,
    nodes: int = 1,
    use_redis: bool = True,
    embedded: bool = False,
    lease_seconds: float = 10.0,
    capacity: int = 256,
    api_workers: int = 2,
) -> Iterator[Site]:
    home = Path(tempfile.mkdtemp(prefix="bench-ts-"))
    db_url = f"sqlite:///{home / 'tasks.db'}" if embedded else services.create_mysql_database()
    migrate.upgrade(db_url)
    if use_redis:
        redis.Redis.from_url(REDIS_URL).flushdb()
    env = {
        "TASK_DB_URL": db_url,
        "TASK_WORKER_SECRET": SECRET,
        "TASK_LOG_LEVEL": "warning",
        "TASK_LEASE_SECONDS": str(lease_seconds),
        **({"TASK_REDIS_URL": REDIS_URL} if use_redis else {}),
    }
    engine = create_engine(db_url)
    try:
        with ExitStack() as stack:
            servers, urls = [], []
            for index in range(nodes):
                port = free_port()
                url = f"http://127.0.0.1:{port}"
                argv = [PYTHON, "-m", "taskscheduler", "serve", "--bind", f"127.0.0.1:{port}"]
                argv += ["--workers", str(api_workers)]
                servers.append(
                    stack.enter_context(
                        running(
                            argv,
                            url=url,
                            log_path=home / f"node{index}.log",
                            env={**env, "TASK_NODE_NAME": f"bench{index}"},
                        )
                    )
                )
                urls.append(url)
            wport = free_port()
            argv = [PYTHON, "-m", "taskworker", "serve", "--bind", f"127.0.0.1:{wport}"]
            argv += ["--scheduler", urls[-1], "--capacity", str(capacity), "--name", "bench"]
            worker = stack.enter_context(
                running(
                    argv,
                    url=f"http://127.0.0.1:{wport}",
                    log_path=home / "worker.log",
                    env={"TASK_WORKER_SECRET": SECRET, "TASK_LOG_LEVEL": "warning"},
                )
            )
            wait_until(lambda: get(f"{urls[0]}/v1/workers"), 30, what="worker registered")
            yield Site(urls, engine, servers, worker)
    finally:
        engine.dispose()
        if not embedded:
            services.drop_mysql_database(db_url)


def post(url: str, body: Any) -> Any:
    reply = HTTP.request(
        "POST", url, body=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert reply.status < 300, reply.data[:300]
    return json.loads(reply.data)


def get(url: str) -> Any:
    reply = HTTP.request("GET", url)
    assert reply.status < 300, reply.data[:300]
    return json.loads(reply.data)


def write_results(scenario: str, figures: dict[str, Any]) -> Path:
    """``bench/results/<scenario>-<UTC time>.json``."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{scenario}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(figures, indent=2))
    print(f"written to {out}")
    return out


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _tree_rss(pid: int) -> int:
    """The RSS of a process and all its descendants (gunicorn workers, the loops process)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0
        )
        stack += [int(child) for child in children]
    return total
