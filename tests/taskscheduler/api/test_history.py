"""/v1/tasks (list), /v1/tasks/{id}/transitions, /logs and /children."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, update

from taskscheduler.db.tables import TASKS
from tests.taskscheduler.api.harness import Api, build_api, drive, snapshot


def listed(api: Api, **params: Any) -> list[int]:
    result = api.call("GET", "/v1/tasks", role="viewer", params=params)
    assert result.status_code == 200, result.text
    return [task["task_id"] for task in result.json["items"]]


def test_the_list_filters_by_type_state_outcome_name_and_parent(api: Api):
    # Given tasks of two types, in different states, one a child of another
    parent = api.create(create_info={"task_name": "p"})["task_id"]
    child = api.create(create_info={"task_name": "c", "parent_task_id": parent})["task_id"]
    external = api.create(task_type="external")["task_id"]
    api.act(child, "cancel")
    # Then each filter selects exactly its tasks, newest first
    assert listed(api) == [external, child, parent]
    assert listed(api, type="sleep") == [child, parent]
    assert listed(api, state="finish") == [child]
    assert listed(api, outcome="cancelled") == [child]
    assert listed(api, name="p") == [parent]
    assert listed(api, parent=parent) == [child]
    assert listed(api, type="sleep", state="init") == [parent]
    assert listed(api, since="2999-01-01T00:00:00Z") == []
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert listed(api, since=yesterday) == [external, child, parent]


def test_a_listed_task_shows_what_its_query_shows(db_url: str, engine: Engine):
    # Given a task with every kind of field set: nested and unicode params, resources, a
    # float deadline, a callback (to a host the node allows), progress, a result and an
    # error, times with and without microseconds
    api = build_api(
        db_url,
        engine,
        callback_allow="127.0.0.1",
        callback_secret="callback-secret-of-32-bytes-1234",
    )
    task_id = api.create(
        create_info={
            "task_name": "nächtlich ✓",
            "resources": ["mysql:db-42", "host:a"],
            "callback_url": "http://127.0.0.1:9/done",
            "idempotency_key": "k-1",
        },
        process_arg={"deadline_second": 12.5, "lock_timeout": 0.25, "max_retry": 2},
        params={"seconds": 0.01},
    )["task_id"]
    drive(api.engine, task_id, "create", "prepare", "run", worker="http://127.0.0.1:9")
    on_the_hour = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with api.engine.begin() as conn:
        conn.execute(
            update(TASKS)
            .where(TASKS.c.id == task_id)
            .values(
                params={"seconds": 0.01, "note": {"deep": [1, 2.5, None, '"quoted"']}},
                progress_percent=33.3,
                progress_message="copying 'ibdata1'",
                result={"rows": 12, "ok": True},
                error={"message": "was retried"},
                heartbeat_at=on_the_hour,
            )
        )
    # Then the list shows the task exactly as a query of it does
    (listed_task,) = api.call("GET", "/v1/tasks", role="viewer").json["items"]
    queried = api.get(task_id)
    assert listed_task == queried
    assert listed_task["heartbeat_at"] == "2026-01-02T03:04:05Z"
    assert listed_task["progress"] == {"percent": 33.3, "message": "copying 'ibdata1'"}
    assert listed_task["params"]["note"] == {"deep": [1, 2.5, None, '"quoted"']}
    # and the children's list alike
    child = api.create(create_info={"parent_task_id": task_id})["task_id"]
    (listed_child,) = api.call("GET", f"/v1/tasks/{task_id}/children", role="viewer").json["items"]
    assert listed_child == api.get(child)


def test_the_list_pages_by_cursor_without_repeating_or_skipping(api: Api):
    ids = [api.create()["task_id"] for _ in range(7)]
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = api.call("GET", "/v1/tasks", role="viewer", params=params).json
        pages += 1
        seen += [task["task_id"] for task in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        # A task created between pages appears on no later page (it is newer than the cursor)
        api.create()
    assert seen == sorted(ids, reverse=True)
    assert pages == 3


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"state": "sleeping"}, "state"),
        ({"outcome": "fine"}, "outcome"),
        ({"parent": "x"}, "parent"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-01-01T00:00:00"}, "since"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
    ],
)
def test_bad_list_filters_are_a_400_naming_them(sqlite_api: Api, params, field):
    result = sqlite_api.call("GET", "/v1/tasks", role="viewer", params=params)
    assert result.status_code == 400
    assert result.json["field"] == field


def test_transitions_are_the_whole_record_in_order(api: Api):
    task_id = api.create()["task_id"]
    drive(api.engine, task_id, "create", "prepare")
    api.act(task_id, "pause", reason="lunch")
    found = api.call("GET", f"/v1/tasks/{task_id}/transitions", role="viewer").json
    assert [(t["from_state"], t["to_state"]) for t in found] == [
        ("none", "init"),
        ("init", "create"),
        ("create", "prepare"),
        ("prepare", "pause"),
    ]
    assert found[-1]["reason"] == "lunch"
    assert {"from_state", "to_state", "trigger", "actor", "at", "reason"} <= set(found[0])


@pytest.mark.parametrize("what", ["transitions", "logs", "children"])
def test_the_history_of_an_unknown_task_is_a_404(sqlite_api: Api, what):
    result = sqlite_api.call("GET", f"/v1/tasks/4242/{what}", role="viewer")
    assert result.status_code == 404


def test_a_worker_appends_logs_in_a_batch_and_readers_follow_them(api: Api):
    # Given a task on attempt 1
    task_id = api.create()["task_id"]
    drive(api.engine, task_id, "create", worker="w1")
    # When its worker posts two batches, signed
    lines = [{"message": f"line {n}", "level": "info"} for n in range(3)]
    first = api.signed("POST", f"/v1/tasks/{task_id}/logs", json={"lines": lines})
    assert first.status_code == 201, first.text
    assert first.json == {"appended": 3}
    # Then a reader gets them in order, then only what came after
    page = api.call("GET", f"/v1/tasks/{task_id}/logs", role="viewer", params={"limit": 2}).json
    assert [line["message"] for line in page["items"]] == ["line 0", "line 1"]
    assert page["items"][0]["attempt"] == 1
    more = {"lines": [{"message": "late", "level": "error", "at": "2026-01-01T00:00:00Z"}]}
    api.signed("POST", f"/v1/tasks/{task_id}/logs", json=more)
    rest = api.call(
        "GET", f"/v1/tasks/{task_id}/logs", role="viewer", params={"after": page["next_after"]}
    ).json
    assert [line["message"] for line in rest["items"]] == ["line 2", "late"]
    assert rest["items"][-1]["level"] == "error"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lines": []}, "lines"),
        ({"lines": [{"level": "info"}]}, "lines[0].message"),
        ({"lines": [{"message": "x", "level": "loud"}]}, "lines[0].level"),
        ({"lines": [{"message": "x", "at": "2026-01-01T00:00:00"}]}, "lines[0].at"),
    ],
)
def test_a_bad_log_batch_is_a_400_naming_the_line_and_stores_nothing(sqlite_api: Api, body, field):
    task_id = sqlite_api.create()["task_id"]
    before = snapshot(sqlite_api.engine)
    result = sqlite_api.signed("POST", f"/v1/tasks/{task_id}/logs", json=body)
    assert result.status_code == 400
    assert result.json["field"] == field
    assert snapshot(sqlite_api.engine) == before


def test_an_operator_token_cannot_append_logs(sqlite_api: Api):
    task_id = sqlite_api.create()["task_id"]
    before = snapshot(sqlite_api.engine)
    result = sqlite_api.call(
        "POST", f"/v1/tasks/{task_id}/logs", json={"lines": [{"message": "forged"}]}
    )
    assert result.status_code == 403
    assert snapshot(sqlite_api.engine) == before


def test_children_are_listed_oldest_first_in_pages(api: Api):
    parent = api.create()["task_id"]
    kids = [api.create(create_info={"parent_task_id": parent})["task_id"] for _ in range(3)]
    api.create()
    first = api.call("GET", f"/v1/tasks/{parent}/children", role="viewer", params={"limit": 2}).json
    second = api.call(
        "GET",
        f"/v1/tasks/{parent}/children",
        role="viewer",
        params={"limit": 2, "cursor": first["next_cursor"]},
    ).json
    found = [t["task_id"] for t in first["items"]] + [t["task_id"] for t in second["items"]]
    assert found == kids
    assert second["next_cursor"] is None
