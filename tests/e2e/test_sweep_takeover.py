"""Two ``taskscheduler serve`` nodes on MariaDB with their locks in Redis: one node's Checker
sweeps at a time, and when that node is killed (-9) the other takes the sweep over within
the lease time.

The Checker's work is made visible by a type limit of one: every finished ``sleep`` wakes
the tasks postponed behind it, and the sweeping Checker requeues them, each requeue a
transition record whose actor names the node (``checker:<node>``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from taskscheduler.db import migrate
from taskscheduler.db.engine import make_engine
from taskscheduler.db.models import utcnow
from taskscheduler.db.tables import RECORDS, TASKS
from taskscheduler.locks.redis import RedisLocks
from taskscheduler.loops.checker import SWEEP_LEASE
from tests import services
from tests.processes import PYTHON, Server, call, free_port, running, wait_until

SECRET = "sweep-worker-secret"
LEASE_SECONDS = 3
#: Polling of the test and the loops' pace, on top of the lease, for a takeover to be seen.
SLACK_SECONDS = 2


@contextmanager
def node(index: int, db_url: str, redis_url: str, tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    argv = [PYTHON, "-m", "taskscheduler", "serve", "--bind", f"127.0.0.1:{port}"]
    env = {
        "TASK_DB_URL": db_url,
        "TASK_REDIS_URL": redis_url,
        "TASK_LOCK_BACKEND": "redis",
        "TASK_QUEUE_BACKEND": "database",  # this test is about the locks alone
        "TASK_WORKER_SECRET": SECRET,
        "TASK_NODE_NAME": f"node{index}",
        "TASK_LEASE_SECONDS": str(LEASE_SECONDS),
        "TASK_HEARTBEAT_TIMEOUT_SECONDS": "3",
        "TASK_TYPE_LIMITS": "sleep=1",
    }
    url = f"http://127.0.0.1:{port}"
    with running(
        [*argv, "--workers", "1"], url=url, log_path=tmp_path / f"node{index}.log", env=env
    ) as server:
        yield server


def test_one_checker_sweeps_at_a_time_and_another_node_takes_over_after_a_kill(tmp_path, redis_url):
    db_url = services.create_mysql_database()
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    locks = RedisLocks.from_url(redis_url)

    def checker_records() -> list[tuple[str, object]]:
        with engine.connect() as conn:
            rows = conn.execute(
                select(RECORDS.c.actor, RECORDS.c.at)
                .where(RECORDS.c.actor.like("checker:%"))
                .order_by(RECORDS.c.id)
            )
            return [(r.actor, r.at) for r in rows]

    def unfinished() -> int:
        with engine.connect() as conn:
            query = select(func.count()).where(TASKS.c.state != "finish")
            return int(conn.execute(query).scalar_one())

    try:
        with ExitStack() as stack:
            # Given node0 sweeping, then node1 and a worker reporting to node1
            node0 = stack.enter_context(node(0, db_url, redis_url, tmp_path))
            wait_until(lambda: locks.holder_of(SWEEP_LEASE) == "node0", 30, what="node0 sweeps")
            node1 = stack.enter_context(node(1, db_url, redis_url, tmp_path))
            port = free_port()
            worker = [PYTHON, "-m", "taskworker", "serve", "--bind", f"127.0.0.1:{port}"]
            worker += ["--scheduler", node1.url, "--name", "w0"]
            stack.enter_context(
                running(
                    worker,
                    url=f"http://127.0.0.1:{port}",
                    log_path=tmp_path / "w0.log",
                    env={"TASK_WORKER_SECRET": SECRET, "TASK_WORKER_HEARTBEAT_SECONDS": "1"},
                )
            )
            wait_until(lambda: call("GET", f"{node1.url}/v1/workers"), 30, what="worker up")
            for _ in range(10):
                call("POST", f"{node1.url}/v1/task/sleep", {"params": {"seconds": 1}})
            wait_until(
                lambda: len(checker_records()) >= 3, 60, what="node0's checker requeued tasks"
            )
            # When node0 dies without a word while tasks are still waiting
            before = {actor for actor, _ in checker_records()}
            killed_at = utcnow()
            node0.kill()
            wait_until(
                lambda: locks.holder_of(SWEEP_LEASE) == "node1",
                LEASE_SECONDS + SLACK_SECONDS,
                interval=0.1,
                what="node1 took the sweep over",
            )
            taken_at = utcnow()
            wait_until(lambda: unfinished() == 0, 120, interval=0.5, what="all finished")
            records = checker_records()
            with engine.connect() as conn:
                outcomes = list(conn.execute(select(TASKS.c.outcome)).scalars())
                odd = conn.execute(
                    select(RECORDS.c.task_id, RECORDS.c.trigger, RECORDS.c.actor, RECORDS.c.reason)
                    .join(TASKS, TASKS.c.id == RECORDS.c.task_id)
                    .where(TASKS.c.outcome != "succeeded")
                    .order_by(RECORDS.c.id)
                ).all()
    finally:
        locks.close()
        engine.dispose()
        services.drop_mysql_database(db_url)

    # Then every task succeeded despite the kill
    assert outcomes == ["succeeded"] * 10, "\n".join(map(str, odd))
    # And only node0's checker swept while it lived, and only node1's after its death
    assert before == {"checker:node0"}
    actors = [actor for actor, _ in records]
    switch = actors.index("checker:node1")
    assert set(actors[:switch]) == {"checker:node0"}
    assert set(actors[switch:]) == {"checker:node1"}
    assert all(at <= killed_at for actor, at in records if actor == "checker:node0")
    # And node1 took over within the lease time
    assert taken_at - killed_at <= timedelta(seconds=LEASE_SECONDS + SLACK_SECONDS)
    first_sweep = records[switch][1]
    assert first_sweep - killed_at <= timedelta(seconds=LEASE_SECONDS + SLACK_SECONDS)
