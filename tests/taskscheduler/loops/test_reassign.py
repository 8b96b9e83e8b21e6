"""An attempt handed to another worker before it ran: the records name the worker that ran it.

Two real workers: one full (every slot taken by work the scheduler does not know of, so it
answers the create with 503) yet looking the emptier to the scheduler, and the fixture's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from taskscheduler.db.models import utcnow
from taskscheduler.loops.scheduler import SchedulerLoop
from taskscheduler.workers.capacity import WORKERS
from taskworker.contract.worker import Dispatch, WorkerCreateBody
from tests.processes import PYTHON, Server, call, free_port, running, wait_until
from tests.taskscheduler.loops.conftest import SECRET, Node


@pytest.fixture
def full_worker(node: Node, worker: Server, tmp_path: Path) -> Iterator[Server]:
    """A real worker with one slot, taken by a task handed to it directly, that the
    scheduler believes has a hundred free: it is picked first and refuses (503)."""
    port = free_port()
    argv = [PYTHON, "-m", "taskworker", "serve", "--bind", f"127.0.0.1:{port}"]
    argv += ["--scheduler", node.base, "--name", "full-worker", "--capacity", "1"]
    env = {"TASK_WORKER_SECRET": SECRET, "TASK_WORKER_HEARTBEAT_SECONDS": "1"}
    url = f"http://127.0.0.1:{port}"
    with running(argv, url=url, log_path=tmp_path / "full-worker.log", env=env) as server:
        wait_until(lambda: len(call("GET", f"{node.base}/v1/workers")) == 2, 30, what="registered")
        body = WorkerCreateBody(
            params={"seconds": 60}, dispatch=Dispatch(task_id=987_654, attempt=1)
        )
        node.client.create(server.url, "sleep", body)  # its one slot, unknown to the scheduler
        with node.engine.begin() as conn:
            conn.execute(update(WORKERS).where(WORKERS.c.url == url).values(capacity=100))
        yield server


def test_an_attempt_moved_off_a_worker_that_refused_it_is_recorded_naming_both(
    node, worker, full_worker
):
    # Given a full worker that looks the emptier, and a worker with room
    task = node.submit("noop")
    # When the scheduler starts the task (the full worker answers 503)
    SchedulerLoop(node.engine, node.client, secret=SECRET, node="n1", worker_timeout=30).tick(
        utcnow()
    )
    # Then the task ran on the worker with room, in its first attempt
    wait_until(lambda: node.task(task["task_id"]).state == "finish", 10, what="finished")
    row = node.task(task["task_id"])
    assert (row.outcome, row.worker, row.attempt) == ("succeeded", worker.url, 1)
    # And its records say so: the create went to the full worker, the reassign names both,
    # and no record after it names the worker that refused
    records = node.records(task["task_id"])
    triggers = [r.trigger for r in records]
    assert triggers.count("reassign") == 1
    create, reassign = records[1], records[triggers.index("reassign")]
    assert triggers.index("create") < triggers.index("reassign") < triggers.index("run")
    assert create.reason == f"to {full_worker.url}"
    # (a noop has nothing to lock: its prepare was recorded with its create)
    assert (reassign.from_state, reassign.to_state, reassign.attempt) == ("prepare", "prepare", 1)
    assert reassign.reason.startswith(f"worker {full_worker.url} unavailable")
    assert reassign.reason.endswith(f"attempt moved to {worker.url}")
    assert reassign.actor == "scheduler:n1"
    named = [r.reason for r in records if r.reason and "http://" in r.reason]
    assert named[-1].endswith(worker.url)
