"""The real console against a real scheduler API under gunicorn, over a migrated SQLite file.

One scheduler serves the whole package (starting gunicorn costs about a second); every test
makes tasks of its own and never counts rows it did not create. A worker's task types are
registered with a real signed ``POST /v1/workers``. There are no scheduler loops here, so a
test that needs a task further along moves it with the scheduler's own ``transition``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine

from taskconsole.cli import main
from taskscheduler.db import migrate
from taskscheduler.db.engine import make_engine
from taskscheduler.tasks.transitions import transition
from taskworker import signing
from tests import processes
from tests.taskscheduler.api.harness import SECRET, TOKENS, WORKER_TYPES


@dataclass
class Scheduler:
    url: str
    engine: Engine
    server: processes.Server

    def register_worker(self, name: str = "w1") -> None:
        registration = {
            "name": name,
            "url": f"http://127.0.0.1:9/{name}",
            "capacity": 4,
            "task_types": WORKER_TYPES,
        }
        body = msgspec.json.encode(registration)
        headers = signing.sign(SECRET, "POST", "/v1/workers", body, worker=name)
        headers["Content-Type"] = "application/json"
        answer = httpx.post(f"{self.url}/v1/workers", content=body, headers=headers)
        assert answer.status_code == 201, answer.text

    def drive(self, task_id: int, *triggers: str, **kwargs: Any) -> None:
        """Move a task as the scheduler's loops would; ``create`` puts it on worker w1."""
        for trigger in triggers:
            changes = {"worker": "w1"} if trigger == "create" else None
            transition(self.engine, task_id, trigger, actor="scheduler", changes=changes, **kwargs)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """A direct API call as an admin, to arrange what a test starts from."""
        headers = {"Authorization": f"Bearer {TOKENS['admin']}"}
        answer = httpx.request(method, f"{self.url}{path}", headers=headers, **kwargs)
        assert answer.is_success, answer.text
        return answer.json()


@pytest.fixture(scope="session")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scheduler]:
    folder = tmp_path_factory.mktemp("console")
    db_url = f"sqlite:///{folder / 'tasks.db'}"
    migrate.upgrade(db_url)
    port = processes.free_port()
    env = {
        "TASK_DB_URL": db_url,
        "TASK_API_TOKENS": ",".join(f"{token}:{role}" for role, token in TOKENS.items()),
        "TASK_WORKER_SECRET": SECRET,
    }
    argv = [
        *(processes.PYTHON, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"),
        *("--worker-class", "gthread", "--threads", "4", "--workers", "1"),
        "taskscheduler.api.app:get_app()",
    ]
    server = processes.start(
        argv, url=f"http://127.0.0.1:{port}", log_path=folder / "scheduler.log", env=env
    )
    engine = make_engine(db_url)
    found = Scheduler(server.url, engine, server)
    found.register_worker()
    yield found
    engine.dispose()
    server.stop()


class Console:
    """Runs the real ``taskconsole`` group with the URL and a token, as an operator would."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.runner = CliRunner()

    def __call__(self, *args: str, role: str | None = "operator", **env: str) -> Result:
        token = ["--token", TOKENS[role]] if role else []
        return self.runner.invoke(main, ["--url", self.url, *token, *args], env=env or None)

    def json(self, *args: str, role: str = "operator") -> Any:
        """``--json`` output, parsed; the command must have succeeded."""
        result = self("--json", *args, role=role)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def submit(self, task_type: str = "sleep", *args: str) -> dict[str, Any]:
        if task_type == "sleep" and not any(a.startswith("seconds=") for a in args):
            args = (*args, "--param", "seconds=1")
        return dict(self.json("submit", task_type, *args))


@pytest.fixture
def console(scheduler: Scheduler) -> Console:
    return Console(scheduler.url)
