"""A real API on a loopback port and a real worker process registered with it, so a loop's
``tick`` drives the actual worker contract while the test decides when each pass runs.

The API is the scheduler's own app served by a threaded WSGI server in this process: the
worker registers, heartbeats and reports through it exactly as with ``taskscheduler serve``,
but no loops process runs behind it, so only the ticks a test calls move a task.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from sqlalchemy import Engine, select

from taskscheduler.api.app import create_app
from taskscheduler.db.tables import RECORDS, TASKS
from taskscheduler.services import Services
from taskscheduler.settings import Settings
from taskscheduler.workers.client import WorkerClient
from tests.processes import PYTHON, Server, call, free_port, running, wait_until

SECRET = "loops-worker-secret"


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    # request threads are joined by server_close(): a report still in flight when a test
    # ends finishes (and returns its pooled connection) before the pool is checked
    daemon_threads = False
    block_on_close = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Request lines would drown the test's own output."""


@dataclass
class Node:
    """The API's URL, the engine under it, and the client the loops call workers with."""

    base: str
    engine: Engine
    client: WorkerClient

    def submit(self, task_type: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return dict(call("POST", f"{self.base}/v1/task/{task_type}", body or {}))

    def task(self, task_id: int) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(TASKS).where(TASKS.c.id == task_id)).one()

    def records(self, task_id: int) -> list[Any]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(RECORDS).where(RECORDS.c.task_id == task_id).order_by(RECORDS.c.id)
                )
            )

    def triggers(self, task_id: int) -> list[str]:
        return [r.trigger for r in self.records(task_id)]


@pytest.fixture
def node(db_url: str, engine: Engine) -> Iterator[Node]:
    settings = Settings(db_url=db_url, worker_secret=SECRET, node_name="test-node")
    client = WorkerClient(SECRET, "test-node")
    app = create_app(settings, Services.build(settings, engine=engine, commands=client))
    server = make_server(
        "127.0.0.1", 0, app, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Node(f"http://127.0.0.1:{server.server_address[1]}", engine, client)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def worker(node: Node, tmp_path: Path) -> Iterator[Server]:
    """A real ``taskworker serve`` with the shipped plugins, registered with ``node``."""
    port = free_port()
    argv = [PYTHON, "-m", "taskworker", "serve", "--bind", f"127.0.0.1:{port}"]
    argv += ["--scheduler", node.base, "--name", "loops-worker"]
    env = {"TASK_WORKER_SECRET": SECRET, "TASK_WORKER_HEARTBEAT_SECONDS": "1"}
    url = f"http://127.0.0.1:{port}"
    with running(argv, url=url, log_path=tmp_path / "worker.log", env=env) as server:
        wait_until(lambda: call("GET", f"{node.base}/v1/workers"), 30, what="worker registered")
        yield server
