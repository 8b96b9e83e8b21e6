"""Two ``taskscheduler serve`` nodes and two workers on one MariaDB, as a production site runs
them, and the checks a user makes of what they did: from the transition records alone."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from taskscheduler.db import migrate
from taskscheduler.db.engine import make_engine
from taskscheduler.db.tables import RECORDS, TASKS
from tests import services
from tests.processes import PYTHON, Server, call, free_port, running, wait_until

SECRET = "cluster-worker-secret"


@dataclass
class Cluster:
    engine: Engine
    nodes: list[Server]
    workers: list[Server] = field(default_factory=list)

    def submit(self, index: int, task_type: str, body: dict[str, Any]) -> int:
        """Submit through node ``index`` (alternating nodes is what a load balancer does)."""
        node = self.nodes[index % len(self.nodes)]
        return int(call("POST", f"{node.url}/v1/task/{task_type}", body)["task_id"])

    def unfinished(self) -> int:
        with self.engine.connect() as conn:
            query = select(func.count()).where(TASKS.c.state != "finish")
            return int(conn.execute(query).scalar_one())

    def wait_all_finished(self, timeout: float) -> None:
        wait_until(lambda: self.unfinished() == 0, timeout, interval=0.5, what="all finished")

    def outcomes(self) -> dict[int, tuple[str, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(TASKS.c.id, TASKS.c.task_type, TASKS.c.outcome))
            return {r.id: (r.task_type, r.outcome) for r in rows}

    def assert_outcomes(self, expected: dict[int, tuple[str, str]]) -> None:
        """Every task ended as expected; otherwise the failure tells each odd task's story."""
        found = self.outcomes()
        odd = sorted(t for t in expected if found.get(t) != expected[t])
        assert not odd, "\n".join(self.story(t) for t in odd[:5])
        assert set(found) == set(expected)

    def story(self, task_id: int) -> str:
        """A task's records and error, for a failure message."""
        with self.engine.connect() as conn:
            error = conn.execute(select(TASKS.c.error).where(TASKS.c.id == task_id)).scalar()
        lines = [
            f"  {r.at:%H:%M:%S.%f} {r.trigger} {r.from_state}->{r.to_state} {r.actor} "
            f"#{r.attempt} {r.reason or ''}"
            for r in self.records()
            if r.task_id == task_id
        ]
        return "\n".join([f"task {task_id}: error {error}", *lines])

    def records(self) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(RECORDS).order_by(RECORDS.c.id)))

    def assert_nothing_twice(self) -> None:
        """Every attempt was created once and run at most once; every task finished once."""
        records = self.records()
        for trigger in ("create", "run"):
            counted = Counter((r.task_id, r.attempt) for r in records if r.trigger == trigger)
            twice = {key: n for key, n in counted.items() if n > 1}
            assert not twice, f"{trigger} recorded more than once for (task, attempt): {twice}"
        ends = Counter(r.task_id for r in records if r.to_state == "finish")
        assert set(ends.values()) == {1}
        assert set(ends) == set(self.outcomes())


@contextmanager
def cluster(
    tmp_path: Path,
    *,
    capacity: int = 16,
    redis_url: str | None = None,
    embedded: bool = False,
    worker_env: dict[str, str] | None = None,
) -> Iterator[Cluster]:
    """Node 0 and node 1 share the database (and, given ``redis_url``, the Redis queue);
    both workers report to node 1. ``embedded``: the database is one SQLite file, with the
    database queue and locks (the defaults), instead of a MariaDB database. ``worker_env``:
    more environment for the workers (credentials references, say)."""
    db_url = f"sqlite:///{tmp_path / 'tasks.db'}" if embedded else services.create_mysql_database()
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    with ExitStack() as stack:
        nodes = []
        for index in range(2):
            port = free_port()
            argv = [PYTHON, "-m", "taskscheduler", "serve", "--bind", f"127.0.0.1:{port}"]
            env = {
                "TASK_DB_URL": db_url,
                "TASK_WORKER_SECRET": SECRET,
                "TASK_NODE_NAME": f"node{index}",
                "TASK_HEARTBEAT_TIMEOUT_SECONDS": "3",
                "TASK_LEASE_SECONDS": "3",
                **({"TASK_REDIS_URL": redis_url} if redis_url else {}),
            }
            log_path = tmp_path / f"node{index}.log"
            url = f"http://127.0.0.1:{port}"
            nodes.append(
                stack.enter_context(
                    running([*argv, "--workers", "1"], url=url, log_path=log_path, env=env)
                )
            )
        result = Cluster(engine, nodes)
        for index in range(2):
            port = free_port()
            argv = [PYTHON, "-m", "taskworker", "serve", "--bind", f"127.0.0.1:{port}"]
            argv += ["--scheduler", nodes[1].url, "--name", f"w{index}"]
            argv += ["--capacity", str(capacity)]
            env = {
                "TASK_WORKER_SECRET": SECRET,
                "TASK_WORKER_HEARTBEAT_SECONDS": "1",
                **(worker_env or {}),
            }
            url = f"http://127.0.0.1:{port}"
            log_path = tmp_path / f"w{index}.log"
            result.workers.append(
                stack.enter_context(running(argv, url=url, log_path=log_path, env=env))
            )
        wait_until(
            lambda: len(call("GET", f"{nodes[1].url}/v1/workers")) == 2, 30, what="workers up"
        )
        try:
            yield result
        finally:
            engine.dispose()
            stack.close()
            if not embedded:
                services.drop_mysql_database(db_url)
