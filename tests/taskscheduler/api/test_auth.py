"""Bearer tokens with roles, signed worker requests, and when the API may run open."""

from __future__ import annotations

import time

import pytest
from falcon import testing
from sqlalchemy import Engine

from taskscheduler.api.app import create_app
from taskscheduler.services import Services
from taskscheduler.settings import Settings
from taskworker import signing
from taskworker.config import SettingsError
from tests.taskscheduler.api.harness import SECRET, WORKER_TYPES, Api, snapshot


def test_a_request_without_a_token_is_a_401(sqlite_api: Api):
    result = sqlite_api.call("GET", "/v1/tasks", role=None)
    assert result.status_code == 401
    assert set(result.json) == {"title", "description"}


@pytest.mark.parametrize("header", ["Bearer not-a-token", "Basic dXNlcjpwdw==", "Bearer "])
def test_an_unknown_token_or_scheme_is_a_401_and_creates_nothing(sqlite_api: Api, header):
    before = snapshot(sqlite_api.engine)
    result = sqlite_api.call(
        "POST",
        "/v1/task/sleep",
        role=None,
        json={"params": {"seconds": 1}},
        headers={"Authorization": header},
    )
    assert result.status_code == 401
    assert snapshot(sqlite_api.engine) == before


@pytest.mark.parametrize(
    ("role", "method", "path", "allowed"),
    [
        ("viewer", "GET", "/v1/tasks", True),
        ("viewer", "GET", "/v1/types", True),
        ("viewer", "GET", "/metrics", True),
        ("viewer", "POST", "/v1/task/sleep", False),
        ("operator", "POST", "/v1/task/sleep", True),
        ("operator", "PUT", "/v1/workers/w1/drain", False),
        ("operator", "POST", "/v1/workers", False),
        ("admin", "PUT", "/v1/workers/w1/drain", True),
        ("admin", "POST", "/v1/task/sleep", True),
    ],
)
def test_each_role_may_do_what_its_rank_allows_and_no_more(
    sqlite_api: Api, role, method, path, allowed
):
    bodies = {
        "/v1/task/sleep": {"params": {"seconds": 1}},
        "/v1/workers": {"name": "w9", "url": "http://127.0.0.1:9", "task_types": WORKER_TYPES},
    }
    before = snapshot(sqlite_api.engine)
    result = sqlite_api.call(method, path, role=role, json=bodies.get(path))
    if allowed:
        assert result.status_code < 300, result.text
    else:
        assert result.status_code == 403
        assert role in result.json["description"]
        assert snapshot(sqlite_api.engine) == before


def test_a_viewer_cannot_act_on_a_task(sqlite_api: Api):
    task_id = sqlite_api.create()["task_id"]
    before = snapshot(sqlite_api.engine)
    assert sqlite_api.act(task_id, "cancel", role="viewer").status_code == 403
    assert snapshot(sqlite_api.engine) == before


def test_health_and_the_document_need_no_token(sqlite_api: Api):
    assert sqlite_api.call("GET", "/health", role=None).status_code == 200
    assert sqlite_api.call("GET", "/openapi.json", role=None).status_code == 200


def test_a_signed_registration_is_recorded_under_the_workers_name(sqlite_api: Api):
    result = sqlite_api.register_worker("w2")
    assert result.status_code == 201
    assert result.json["name"] == "w2"


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"secret": "another-secret"}, 401),
        ({"skew": -120}, 401),
        ({"skew": +120}, 401),
        ({"tamper": b'{"name":"evil","url":"http://x","task_types":{}}'}, 401),
    ],
)
def test_a_bad_signature_is_a_401_and_registers_nothing(sqlite_api: Api, change, status):
    before = snapshot(sqlite_api.engine)
    body = {"name": "w3", "url": "http://127.0.0.1:9", "task_types": {}}
    if "skew" in change:  # a clock off by this much, taken now (not when tests are collected)
        change = {"now": time.time() + change["skew"]}
    result = sqlite_api.signed("POST", "/v1/workers", json=body, worker="w3", **change)
    assert result.status_code == status, result.text
    assert snapshot(sqlite_api.engine) == before


def test_a_signature_covers_the_query_so_it_cannot_be_moved_to_another_task(sqlite_api: Api):
    # Given a worker's signed report for one task
    api = sqlite_api
    first, second = api.create()["task_id"], api.create()["task_id"]
    target = f"/v1/task/sleep?task_id={first}&action=heartbeat"
    headers = signing.sign(SECRET, "PUT", target, b"", worker="w1")
    before = snapshot(api.engine)
    # When the same headers are replayed against another task
    result = api.client.simulate_put(
        "/v1/task/sleep", query_string=f"task_id={second}&action=heartbeat", headers=headers
    )
    # Then the signature does not match
    assert result.status_code == 401
    assert snapshot(api.engine) == before


def test_a_signed_request_where_workers_have_no_business_is_a_403(sqlite_api: Api):
    task_id = sqlite_api.create()["task_id"]
    before = snapshot(sqlite_api.engine)
    result = sqlite_api.signed(
        "PUT", "/v1/task/sleep", params={"task_id": task_id, "action": "cancel"}
    )
    assert result.status_code == 403
    assert snapshot(sqlite_api.engine) == before


def _app(sqlite_url: str, engine: Engine, **values: object) -> testing.TestClient:
    settings = Settings(db_url=sqlite_url, **values)  # type: ignore[arg-type]
    app = create_app(settings, Services.build(settings, engine=engine))
    return testing.TestClient(app, headers={"Host": "127.0.0.1"})  # open mode: loopback only


@pytest.mark.parametrize("bind", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "unix:/tmp/s"])
def test_without_tokens_the_api_is_open_on_a_loopback_bind(
    sqlite_url: str, sqlite_engine: Engine, bind, caplog
):
    client = _app(sqlite_url, sqlite_engine, bind=bind)
    assert "the API is open" in caplog.text
    assert client.simulate_get("/v1/tasks").status_code == 200


@pytest.mark.parametrize("bind", ["0.0.0.0:8000", "10.1.2.3:80", "scheduler.example:8000"])
def test_without_tokens_the_api_refuses_to_start_on_another_bind(
    sqlite_url: str, sqlite_engine: Engine, bind
):
    with pytest.raises(SettingsError) as refused:
        _app(sqlite_url, sqlite_engine, bind=bind)
    assert refused.value.name == "TASK_API_TOKENS"


def test_open_api_opens_it_on_any_bind_for_local_use(sqlite_url: str, sqlite_engine: Engine):
    client = _app(sqlite_url, sqlite_engine, bind="0.0.0.0:8000", open_api=True)
    assert client.simulate_get("/v1/types").status_code == 200


def test_an_open_api_records_anonymous_actors(sqlite_url: str, sqlite_engine: Engine):
    client = _app(sqlite_url, sqlite_engine)
    registration = {"name": "w1", "url": "http://127.0.0.1:9", "task_types": WORKER_TYPES}
    assert client.simulate_post("/v1/workers", json=registration).status_code == 201
    task = client.simulate_post("/v1/task/sleep", json={"params": {"seconds": 1}}).json
    records = client.simulate_get(f"/v1/tasks/{task['task_id']}/transitions").json
    assert records[0]["actor"] == "anonymous"
    assert task["notify_token"] is None
