"""Body limits, an unreachable database, /health, /metrics and the error shape of falcon's own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from falcon import testing
from sqlalchemy import text

from taskscheduler.api.app import create_app, get_app
from taskscheduler.api.health import ready_by_level
from taskscheduler.db.models import utcnow
from taskscheduler.services import Services
from taskworker.config import SettingsError
from tests.scrape import key, samples, series
from tests.taskscheduler.api.harness import TOKENS, Api, build_api, make_settings, snapshot

LIMIT_BYTES = 2048
#: The source tree, where a child process finds the packages.
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def small_api(sqlite_url: str, sqlite_engine) -> Api:
    return build_api(sqlite_url, sqlite_engine, max_body_bytes=LIMIT_BYTES)


def _big_body() -> bytes:
    return msgspec.json.encode({"params": {"seconds": 1, "pad": "x" * LIMIT_BYTES}})


def test_a_body_over_the_limit_is_a_413_from_its_content_length(small_api: Api):
    before = snapshot(small_api.engine)
    result = small_api.call("POST", "/v1/task/sleep", body=_big_body())
    assert result.status_code == 413
    assert str(LIMIT_BYTES) in result.json["description"]
    assert snapshot(small_api.engine) == before


def test_a_chunked_body_over_the_limit_is_a_413_while_it_is_read(small_api: Api):
    # Given a body sent without Content-Length (chunked, as gunicorn passes it on)
    before = snapshot(small_api.engine)
    result = small_api.call(
        "POST",
        "/v1/task/sleep",
        body=_big_body(),
        extras={"CONTENT_LENGTH": "", "wsgi.input_terminated": True},
    )
    assert result.status_code == 413
    assert snapshot(small_api.engine) == before


def test_a_chunked_body_within_the_limit_is_read_whole(small_api: Api):
    result = small_api.call(
        "POST",
        "/v1/task/sleep",
        body=msgspec.json.encode({"params": {"seconds": 3}}),
        extras={"CONTENT_LENGTH": "", "wsgi.input_terminated": True},
    )
    assert result.status_code == 201, result.text
    assert result.json["params"] == {"seconds": 3}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def unreachable() -> testing.TestClient:
    """An app whose database listens nowhere."""
    settings = make_settings(f"mysql+pymysql://root@127.0.0.1:{_closed_port()}/nowhere")
    services = Services.build(settings)
    yield testing.TestClient(create_app(settings, services))
    services.close()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/health", None),
        ("POST", "/v1/task/sleep", {"params": {"seconds": 1}}),
        ("GET", "/v1/tasks", None),
        ("POST", "/v1/workers", {"name": "w1", "url": "http://127.0.0.1:9"}),
    ],
)
def test_an_unreachable_database_is_a_503_with_retry_after(unreachable, method, path, body):
    result = unreachable.simulate_request(
        method, path, json=body, headers={"Authorization": f"Bearer {TOKENS['admin']}"}
    )
    assert result.status_code == 503
    assert int(result.headers["Retry-After"]) > 0
    assert "database" in result.json["description"]


def test_health_says_ok_when_the_database_answers(sqlite_api: Api):
    assert sqlite_api.call("GET", "/health", role=None).json == {"status": "ok", "database": "ok"}


def test_metrics_count_moves_by_trigger_and_outcome_and_requests_by_route(sqlite_api: Api):
    # Given a task submitted, paused, refused a second pause, then cancelled
    task_id = sqlite_api.create()["task_id"]
    sqlite_api.act(task_id, "pause")
    sqlite_api.act(task_id, "pause")
    sqlite_api.act(task_id, "cancel")
    # When the metrics are scraped
    found = samples(sqlite_api.call("GET", "/metrics", role="viewer").text)
    # Then each committed move counts once, with its outcome (a refused one never)
    moves = series(found, "taskscheduler_transitions_total")
    assert moves == {
        (("outcome", "none"), ("trigger", "submit")): 1,
        (("outcome", "none"), ("trigger", "pause")): 1,
        (("outcome", "cancelled"), ("trigger", "cancel")): 1,
    }
    # And the refusal counts among the requests, by route template
    refused = key(
        "taskscheduler_api_requests_total", method="PUT", route="/v1/task/{task_type}", status="409"
    )
    assert found[refused] == 1


def test_metrics_show_the_ready_tasks_by_level_and_the_workers_by_status(sqlite_api: Api):
    # Given two tasks ready at level 7, one at level 0, one not due for an hour
    for level in (7, 7, 0):
        sqlite_api.create(create_info={"important_level": level})
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    sqlite_api.create(process_arg={"start_time": later})
    # When the metrics are scraped
    found = samples(sqlite_api.call("GET", "/metrics", role="viewer").text)
    # Then the queue shows every level, the waiting task in none
    depth = series(found, "taskscheduler_queue_depth")
    assert depth == {(("level", str(n)),): {7: 2, 0: 1}.get(n, 0) for n in range(10)}
    # And the registered worker is active
    assert found[key("taskscheduler_workers", status="active")] == 1
    assert found[key("taskscheduler_workers", status="draining")] == 0


def test_the_queue_depth_is_an_indexed_count_not_a_scan_of_the_tasks(sqlite_engine):
    # Given the query a scrape counts the ready tasks with
    query = ready_by_level(utcnow()).compile(sqlite_engine, compile_kwargs={"literal_binds": True})
    # When the database plans it
    with sqlite_engine.connect() as conn:
        plan = " ".join(row[-1] for row in conn.execute(text(f"EXPLAIN QUERY PLAN {query}")))
    # Then it reads the tasks in init through the index on (state, ready_at), not the table
    assert "USING INDEX ix_tasks_state_ready_at" in plan
    assert "SCAN tasks" not in plan


def test_metrics_still_answer_when_the_database_does_not(unreachable: testing.TestClient):
    # Given a node whose database listens nowhere
    auth = {"Authorization": f"Bearer {TOKENS['viewer']}"}
    # When the metrics are scraped
    result = unreachable.simulate_get("/metrics", headers=auth)
    # Then the scrape answers with what the node counted, without the database's numbers
    assert result.status_code == 200
    assert "taskscheduler_api_requests_total" in result.text
    assert "taskscheduler_queue_depth{" not in result.text


def test_falcons_own_errors_have_the_same_shape(sqlite_api: Api):
    missing = sqlite_api.call("GET", "/v1/nothing-here", role="viewer")
    assert missing.status_code == 404
    assert set(missing.json) == {"title", "description"}
    wrong = sqlite_api.call("DELETE", "/v1/types", role="admin")
    assert wrong.status_code == 405
    assert "GET" in wrong.headers["Allow"]
    assert set(wrong.json) == {"title", "description"}


def test_the_gunicorn_entry_reads_the_environment(
    sqlite_url: str, sqlite_engine, monkeypatch: pytest.MonkeyPatch
):
    # Given the settings in TASK_* variables only
    monkeypatch.setenv("TASK_DB_URL", sqlite_url)
    monkeypatch.setenv("TASK_API_TOKENS", "env-token:viewer")
    # When gunicorn builds the app
    client = testing.TestClient(get_app())
    # Then it serves with those settings
    assert client.simulate_get("/v1/tasks").status_code == 401
    auth = {"Authorization": "Bearer env-token"}
    assert client.simulate_get("/v1/tasks", headers=auth).status_code == 200


def test_the_gunicorn_entry_refuses_an_open_api_on_a_public_bind(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TASK_BIND", "0.0.0.0:8000")
    with pytest.raises(SettingsError):
        get_app()


_COUNT_ONE = """
import sys
from taskscheduler.metrics import Metrics
metrics = Metrics(sys.argv[1])
metrics.count_moves([("submit", None)])
if len(sys.argv) > 2:
    print(metrics.render()[0].decode())
"""


def test_under_gunicorn_metrics_add_up_across_processes(tmp_path):
    # Given PROMETHEUS_MULTIPROC_DIR, as gunicorn's processes share it
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    run = [sys.executable, "-c", _COUNT_ONE, str(tmp_path)]
    # When two processes each count a transition and a third renders
    for _ in range(2):
        subprocess.run(run, env=env, cwd=ROOT, check=True, timeout=60)
    rendered = subprocess.run(
        [*run, "render"], env=env, cwd=ROOT, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    # Then the scrape shows all three, not just the answering process's own
    assert (
        samples(rendered)[key("taskscheduler_transitions_total", trigger="submit", outcome="none")]
        == 3
    )
