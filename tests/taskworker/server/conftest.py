"""A real scheduler API and real workers, each under gunicorn on its own loopback port.

The scheduler is the real ``taskscheduler`` API over a migrated SQLite file, so what a
worker reports lands in a real database that the tests read. The tests play the scheduler's
loop themselves: they move the stored task with the real lifecycle functions and send the
worker the commands the loop would send, with the same signed client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from sqlalchemy import Engine, select

from taskscheduler.db import migrate
from taskscheduler.db.engine import make_engine
from taskscheduler.db.tables import LOGS, TASKS
from taskscheduler.tasks.transitions import transition
from taskworker.client import SignedClient
from taskworker.contract.api import TaskView
from taskworker.errors import Conflict
from tests.processes import PYTHON, Server, free_port, start, wait_until

SECRET = "test-worker-secret"


class Scheduler:
    def __init__(self, server: Server, engine: Engine) -> None:
        self.server = server
        self.url = server.url
        self.engine = engine
        self.http = urllib3.PoolManager()

    def submit(self, task_type: str, params: dict[str, Any], *, worker: str) -> int:
        """A task stored by the public API and taken by ``worker`` (attempt 1), as a loop would."""
        answer = self.http.request(
            "POST", f"{self.url}/v1/task/{task_type}", json={"params": params}
        )
        assert answer.status == 201, answer.data
        task_id = int(answer.json()["task_id"])
        transition(self.engine, task_id, "create", actor="test-loop", changes={"worker": worker})
        return task_id

    def move(self, task_id: int, trigger: str) -> None:
        transition(self.engine, task_id, trigger, actor="test-loop")

    def task(self, task_id: int) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(TASKS).where(TASKS.c.id == task_id)).one()

    def logs(self, task_id: int) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(LOGS).where(LOGS.c.task_id == task_id)))

    def finished(self, task_id: int, timeout: float = 20.0) -> Any:
        return wait_until(
            lambda: (row := self.task(task_id)).state == "finish" and row,
            timeout,
            what=f"task {task_id} finished at the scheduler",
        )

    def workers(self) -> dict[str, Any]:
        answer = self.http.request("GET", f"{self.url}/v1/workers")
        return {w["name"]: w for w in answer.json()}


class Worker:
    """A running worker and the signed client the scheduler would talk to it with."""

    def __init__(self, server: Server, name: str) -> None:
        self.server = server
        self.name = name
        self.url = server.url
        self.client = SignedClient(server.url, SECRET, name="scheduler")

    def create(self, task_type: str, task_id: int, attempt: int = 1, **body: Any) -> TaskView:
        payload = {"params": {}, **body, "dispatch": {"task_id": task_id, "attempt": attempt}}
        reply = self.client.request("POST", f"/v1/task/{task_type}", body=payload)
        return reply.json(TaskView)

    def act(self, task_type: str, task_id: int, action: str, attempt: int = 1) -> TaskView:
        query = {"task_id": task_id, "action": action, "attempt": attempt}
        reply = self.client.request("PUT", f"/v1/task/{task_type}", query=query)
        return reply.json(TaskView)

    def act_or_none(self, task_type: str, task_id: int, action: str) -> TaskView | None:
        """The action's answer, or None while the worker refuses it (409)."""
        try:
            return self.act(task_type, task_id, action)
        except Conflict:
            return None

    def status(self, task_type: str, task_id: int) -> str:
        query = {"task_id": task_id, "action": "status"}
        reply = self.client.request("GET", f"/v1/task/{task_type}", query=query)
        return str(reply.json(dict[str, Any])["task_status"])

    def progress(self, task_type: str, task_id: int) -> float:
        query = {"task_id": task_id, "action": "progress"}
        reply = self.client.request("GET", f"/v1/task/{task_type}", query=query)
        return float(reply.json(dict[str, Any])["percent"])


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scheduler]:
    home = tmp_path_factory.mktemp("scheduler")
    db_url = f"sqlite:///{home / 'tasks.db'}"
    migrate.upgrade(db_url)
    port = free_port()
    argv = [PYTHON, "-m", "gunicorn", "-k", "gthread", "--threads", "8", "-w", "1"]
    argv += ["-b", f"127.0.0.1:{port}", "taskscheduler.api.app:get_app()"]
    env = {"TASK_DB_URL": db_url, "TASK_WORKER_SECRET": SECRET, "TASK_BIND": f"127.0.0.1:{port}"}
    server = start(argv, url=f"http://127.0.0.1:{port}", log_path=home / "log", env=env)
    engine = make_engine(db_url)
    yield Scheduler(server, engine)
    server.stop()
    engine.dispose()


StartWorker = Callable[..., Worker]


@pytest.fixture(scope="module")
def start_worker(
    scheduler: Scheduler, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartWorker]:
    """Start a ``taskworker serve`` registered with the scheduler; stopped at the end."""
    started: list[Worker] = []

    def launch(name: str, capacity: int = 4, **settings: str) -> Worker:
        port = free_port()
        home: Path = tmp_path_factory.mktemp(name)
        argv = [PYTHON, "-m", "taskworker", "serve", "--bind", f"127.0.0.1:{port}"]
        argv += ["--scheduler", scheduler.url, "--capacity", str(capacity), "--name", name]
        env = {"TASK_WORKER_SECRET": SECRET, "TASK_WORKER_HEARTBEAT_SECONDS": "0.5"}
        env.update({f"TASK_{k.upper()}": v for k, v in settings.items()})
        server = start(argv, url=f"http://127.0.0.1:{port}", log_path=home / "log", env=env)
        wait_until(lambda: name in scheduler.workers(), 15, what=f"{name} registered")
        worker = Worker(server, name)
        started.append(worker)
        return worker

    yield launch
    for worker in started:
        if worker.server.alive():
            worker.server.stop()


@pytest.fixture(scope="module")
def worker(start_worker: StartWorker) -> Worker:
    return start_worker("w-main")


def runs(scheduler: Scheduler, worker: Worker, task_type: str, params: dict[str, Any]) -> int:
    """A task submitted, created on ``worker``, prepared and started there (attempt 1)."""
    task_id = scheduler.submit(task_type, params, worker=worker.name)
    worker.create(task_type, task_id, params=params)
    worker.act(task_type, task_id, "prepare")
    scheduler.move(task_id, "prepare")
    scheduler.move(task_id, "run")
    worker.act(task_type, task_id, "running")
    return task_id
