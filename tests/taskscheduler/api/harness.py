"""The API as a client sees it: real app, real database, requests with real credentials."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import msgspec
from falcon import testing
from sqlalchemy import Engine, func, select

from taskscheduler.api.app import create_app
from taskscheduler.db.models import TaskLog, TransitionRecord, WorkerNode
from taskscheduler.db.tables import TASKS
from taskscheduler.services import Services
from taskscheduler.settings import Settings
from taskscheduler.tasks.actions import WorkerCommands
from taskscheduler.tasks.transitions import transition
from taskworker import signing

TOKENS = {"admin": "admin-token", "operator": "operator-token", "viewer": "viewer-token"}
SECRET = "harness-worker-secret"

SLEEP_SCHEMA = {
    "type": "object",
    "properties": {"seconds": {"type": "number", "minimum": 0}},
    "required": ["seconds"],
    "additionalProperties": False,
}
#: What the fake worker registers: a synchronous sleep and an asynchronous external task.
WORKER_TYPES = {
    "sleep": {"params_schema": SLEEP_SCHEMA, "blocking": True, "supports": ["pause"]},
    "external": {"params_schema": {"type": "object"}, "blocking": False},
}


def make_settings(db_url: str, **overrides: Any) -> Settings:
    tokens = ",".join(f"{token}:{role}" for role, token in TOKENS.items())
    values: dict[str, Any] = {"db_url": db_url, "api_tokens": tokens, "worker_secret": SECRET}
    return Settings(**{**values, **overrides})


def build_api(
    db_url: str, engine: Engine, *, commands: WorkerCommands | None = None, **overrides: Any
) -> Api:
    """The app over ``engine``, with the fake worker registered through the API itself."""
    settings = make_settings(db_url, **overrides)
    services = Services.build(settings, engine=engine, commands=commands)
    api = Api(testing.TestClient(create_app(settings, services)), services)
    registered = api.register_worker()
    assert registered.status_code == 201, registered.text
    return api


class Api:
    """Requests against one app, authenticated as a role, a worker or a notify token."""

    def __init__(self, client: testing.TestClient, services: Services) -> None:
        self.client = client
        self.services = services
        self.engine = services.engine

    def call(
        self,
        method: str,
        path: str,
        *,
        role: str | None = "operator",
        token: str | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> testing.Result:
        headers = dict(kwargs.pop("headers", {}))
        bearer = token or (TOKENS[role] if role else None)
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        body = msgspec.json.encode(json) if json is not None else kwargs.pop("body", None)
        if body:
            headers.setdefault("Content-Type", "application/json")
        return self.client.simulate_request(
            method,
            path,
            headers=headers,
            body=body,
            query_string=urlencode(params or {}),
            **kwargs,
        )

    def signed(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        worker: str = "w1",
        secret: str = SECRET,
        now: float | None = None,
        tamper: bytes | None = None,
    ) -> testing.Result:
        """A worker's request, signed; ``tamper`` replaces the body after signing."""
        body = msgspec.json.encode(json) if json is not None else b""
        query = urlencode(params or {})
        target = f"{path}?{query}" if query else path
        headers = signing.sign(secret, method, target, body, worker=worker, now=now)
        if tamper or body:
            headers["Content-Type"] = "application/json"
        return self.client.simulate_request(
            method, path, headers=headers, body=tamper or body, query_string=query
        )

    def register_worker(self, name: str = "w1", types: Any = None) -> testing.Result:
        registration = {
            "name": name,
            "url": f"http://127.0.0.1:9/{name}",
            "capacity": 4,
            "task_types": WORKER_TYPES if types is None else types,
        }
        return self.signed("POST", "/v1/workers", json=registration, worker=name)

    def create(self, task_type: str = "sleep", **body: Any) -> dict[str, Any]:
        body.setdefault("params", {"seconds": 1} if task_type == "sleep" else {})
        result = self.call("POST", f"/v1/task/{task_type}", json=body)
        assert result.status_code == 201, result.text
        return dict(result.json)

    def act(
        self,
        task_id: int,
        action: str,
        *,
        task_type: str = "sleep",
        json: Any = None,
        role: str | None = "operator",
        **params: Any,
    ) -> testing.Result:
        query = {"task_id": task_id, "action": action, **params}
        return self.call("PUT", f"/v1/task/{task_type}", role=role, json=json, params=query)

    def get(self, task_id: int, task_type: str = "sleep", **params: Any) -> dict[str, Any]:
        result = self.call(
            "GET", f"/v1/task/{task_type}", role="viewer", params={"task_id": task_id, **params}
        )
        assert result.status_code == 200, result.text
        return dict(result.json)


def snapshot(engine: Engine) -> tuple[Any, ...]:
    """Everything a refused request must leave as it was: every task row and every count."""
    with engine.connect() as conn:
        tasks = [tuple(row) for row in conn.execute(select(TASKS).order_by(TASKS.c.id))]
        counts = [
            conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (TransitionRecord.__table__, TaskLog.__table__, WorkerNode.__table__)
        ]
    return (tasks, *counts)


def drive(engine: Engine, task_id: int, *triggers: str, worker: str | None = None) -> None:
    """Move a task as the scheduler's loops would (``create`` puts it on ``worker``)."""
    for trigger in triggers:
        changes = {"worker": worker} if trigger == "create" and worker else None
        transition(engine, task_id, trigger, actor="scheduler", changes=changes)


def state(engine: Engine, task_id: int) -> tuple[str, str | None, int]:
    with engine.connect() as conn:
        row = conn.execute(
            select(TASKS.c.state, TASKS.c.outcome, TASKS.c.version).where(TASKS.c.id == task_id)
        ).one()
    return row.state, row.outcome, row.version
