"""GET /v1/task/{task_type}: one task, one aspect of it, or tasks by name."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine

from taskscheduler.db.engine import make_engine
from tests.taskscheduler.api.harness import Api, build_api, drive, snapshot


def test_a_task_is_read_whole_by_its_id(api: Api):
    created = api.create(create_info={"task_name": "nap", "resources": ["mysql:db-1"]})
    task = api.get(created["task_id"])
    assert task["task_id"] == created["task_id"]
    assert task["resources"] == ["mysql:db-1"]
    assert "notify_token" not in task


def test_each_query_action_answers_its_own_shape(api: Api):
    # Given a task running on a worker that reported progress
    task_id = api.create()["task_id"]
    drive(api.engine, task_id, "create", "prepare", "run", worker="w1")
    report = api.act(task_id, "progress", json={"percent": 40, "message": "copying"})
    assert report.status_code == 200, report.text
    # Then status, progress, heartbeat and summary each say their part
    assert api.get(task_id, action="status") == {
        "task_id": task_id,
        "task_status": "running",
        "outcome": None,
    }
    assert api.get(task_id, action="progress") == {"percent": 40.0, "message": "copying"}
    beat = api.get(task_id, action="heartbeat")
    assert beat["task_id"] == task_id
    assert beat["worker"] == "w1"
    assert beat["heartbeat_at"] is not None
    summary = api.get(task_id, action="summary")
    assert summary["task_status"] == "running"
    assert summary["progress"]["percent"] == 40.0
    assert summary["attempt"] == 1


@pytest.mark.parametrize("action", [None, "status", "progress", "summary", "heartbeat"])
def test_an_unknown_task_id_is_a_404(sqlite_api: Api, action):
    params = {"task_id": 12345} if action is None else {"task_id": 12345, "action": action}
    result = sqlite_api.call("GET", "/v1/task/sleep", role="viewer", params=params)
    assert result.status_code == 404


def test_a_task_of_another_type_is_a_404(api: Api):
    task_id = api.create(task_type="external")["task_id"]
    result = api.call("GET", "/v1/task/sleep", role="viewer", params={"task_id": task_id})
    assert result.status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "task_id"),
        ({"task_id": "seven"}, "task_id"),
        ({"task_id": 0}, "task_id"),
        ({"task_id": 1, "action": "everything"}, "action"),
        ({"task_id": 1, "task_name": "x"}, "task_name"),
        ({"task_name": "x", "action": "status"}, "action"),
        ({"task_name": "x", "limit": 1001}, "limit"),
        ({"task_name": "x", "cursor": "abc"}, "cursor"),
        ({"task_id": 1, "wait": "soon"}, "wait"),
        ({"task_id": 1, "wait": -1}, "wait"),
        ({"task_id": 1, "wait": 61}, "wait"),
        ({"task_id": 1, "wait": "nan"}, "wait"),
        ({"task_name": "x", "wait": 5}, "wait"),
    ],
)
def test_bad_query_parameters_are_a_400_naming_them(sqlite_api: Api, params, field):
    result = sqlite_api.call("GET", "/v1/task/sleep", role="viewer", params=params)
    assert result.status_code == 400
    assert result.json["field"] == field


def test_tasks_by_name_come_latest_first_in_pages(api: Api):
    # Given five tasks named nightly and one named otherwise
    ids = [api.create(create_info={"task_name": "nightly"})["task_id"] for _ in range(5)]
    api.create(create_info={"task_name": "weekly"})
    before = snapshot(api.engine)
    # When they are read two at a time
    seen, cursor = [], None
    while True:
        params = {"task_name": "nightly", "limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        page = api.call("GET", "/v1/task/sleep", role="viewer", params=params).json
        seen.extend(task["task_id"] for task in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # Then every nightly task comes once, newest first, and reading changed nothing
    assert seen == sorted(ids, reverse=True)
    assert snapshot(api.engine) == before


def finish_later(api: Api, task_id: int, delay: float = 0.3) -> threading.Thread:
    """The worker's report of the task's end, made while the test waits for it."""

    def report() -> None:
        time.sleep(delay)
        result = api.act(task_id, "notify", json={"success": True, "result": {"rows": 3}})
        assert result.status_code == 200, result.text

    thread = threading.Thread(target=report)
    thread.start()
    return thread


def test_a_query_with_wait_answers_as_soon_as_the_task_finishes(api: Api):
    # Given a task running on a worker, and no look at the database but on an announcement
    task_id = api.create()["task_id"]
    drive(api.engine, task_id, "create", "prepare", "run", worker="w1")
    api.services.finishes.poll_seconds = 60
    # When a client waits for it while the worker reports its end
    reporting = finish_later(api, task_id)
    answer = api.get(task_id, action="status", wait=30)
    reporting.join()
    # Then the answer is the finished task, woken by the end's announcement
    assert answer == {"task_id": task_id, "task_status": "finish", "outcome": "succeeded"}


def test_a_query_with_wait_answers_as_is_when_the_time_is_up_or_it_has_finished(api: Api):
    task_id = api.create()["task_id"]
    started = time.monotonic()
    assert api.get(task_id, action="status", wait=0.2)["task_status"] == "init"
    assert time.monotonic() - started >= 0.2
    api.act(task_id, "cancel")
    assert api.get(task_id, wait=60)["outcome"] == "cancelled"


def test_with_redis_a_wait_is_answered_by_an_end_another_process_writes(
    db_url: str, engine: Engine, redis_url: str
):
    # Given two API processes of a node (each its own pool) sharing Redis
    waiting = build_api(db_url, engine, redis_url=redis_url)
    other_engine = make_engine(db_url)
    try:
        ending = build_api(db_url, other_engine, redis_url=redis_url)
        task_id = waiting.create()["task_id"]
        drive(engine, task_id, "create", "prepare", "run", worker="w1")
        waiting.services.finishes.poll_seconds = 60
        # When one waits for the task and the other takes the worker's report of its end
        reporting = finish_later(ending, task_id)
        answer = waiting.get(task_id, action="status", wait=30)
        reporting.join()
    finally:
        other_engine.dispose()
    # Then the waiting one answers with the end, woken over Redis
    assert answer == {"task_id": task_id, "task_status": "finish", "outcome": "succeeded"}


def test_a_wait_for_the_whole_task_answers_with_the_task_as_its_end_left_it(api: Api):
    # Given a running task, and no look at the database but on an announcement
    task_id = api.create()["task_id"]
    drive(api.engine, task_id, "create", "prepare", "run", worker="w1")
    api.services.finishes.poll_seconds = 60
    # When a client waits for the whole task while the worker reports its end
    reporting = finish_later(api, task_id)
    answer = api.get(task_id, wait=30)
    reporting.join()
    # Then the answer carries what the end wrote, not only the outcome announced
    assert (answer["task_status"], answer["outcome"]) == ("finish", "succeeded")
    assert answer["result"] == {"rows": 3}
