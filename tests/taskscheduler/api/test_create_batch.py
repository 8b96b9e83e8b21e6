"""POST /v1/tasks: many tasks in one request and one transaction, all or none."""

from __future__ import annotations

import pytest

from tests.taskscheduler.api.harness import Api, snapshot


def item(task_type: str = "sleep", **create_info: object) -> dict[str, object]:
    params = {"seconds": 1} if task_type == "sleep" else {}
    return {"create_info": {"task_type": task_type, **create_info}, "params": params}


def test_a_batch_stores_every_task_in_init_in_the_order_sent(api: Api):
    # When an operator sends three tasks of two types in one request
    body = {"tasks": [item(task_name="a"), item("external", task_name="b"), item(task_name="c")]}
    result = api.call("POST", "/v1/tasks", json=body)
    # Then all three exist, in init, answered in the order sent with their notify tokens
    assert result.status_code == 201, result.text
    created = result.json["tasks"]
    assert [t["task_name"] for t in created] == ["a", "b", "c"]
    assert [t["task_type"] for t in created] == ["sleep", "external", "sleep"]
    assert {t["task_status"] for t in created} == {"init"}
    assert all(t["notify_token"] for t in created)
    listed = api.call("GET", "/v1/tasks", role="viewer").json["items"]
    assert sorted(t["task_id"] for t in listed) == sorted(t["task_id"] for t in created)
    for task in created:
        records = api.call("GET", f"/v1/tasks/{task['task_id']}/transitions", role="viewer").json
        assert [r["trigger"] for r in records] == ["submit"]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"params": {"seconds": 1}}, "tasks[1].create_info.task_type"),
        (
            {"create_info": {"task_type": "sleep"}, "params": {"seconds": "x"}},
            "tasks[1].params.seconds",
        ),
        ({"create_info": {"task_type": "nosuch"}, "params": {}}, "tasks[1].create_info.task_type"),
        (
            {
                "create_info": {"task_type": "sleep", "parent_task_id": 999},
                "params": {"seconds": 1},
            },
            "create_info.parent_task_id",
        ),
    ],
)
def test_one_bad_item_refuses_the_whole_batch_naming_it_and_stores_nothing(
    api: Api, bad: dict[str, object], field: str
):
    before = snapshot(api.engine)
    result = api.call("POST", "/v1/tasks", json={"tasks": [item(), bad, item()]})
    assert result.status_code == 400, result.text
    assert result.json["field"].endswith(field)
    assert snapshot(api.engine) == before


def test_empty_and_repeated_keys_are_refused(api: Api):
    before = snapshot(api.engine)
    empty = api.call("POST", "/v1/tasks", json={"tasks": []})
    assert (empty.status_code, empty.json["field"]) == (400, "tasks")
    twice = api.call(
        "POST", "/v1/tasks", json={"tasks": [item(idempotency_key="k"), item(idempotency_key="k")]}
    )
    assert (twice.status_code, twice.json["field"]) == (
        400,
        "tasks[1].create_info.idempotency_key",
    )
    assert snapshot(api.engine) == before


def test_repeating_a_batch_with_idempotency_keys_stores_nothing_twice(api: Api):
    # Given a batch whose second item was already created on its own
    single = api.call("POST", "/v1/task/external", json={"create_info": {"idempotency_key": "n2"}})
    assert single.status_code == 201
    keyed = [item("external", idempotency_key=key) for key in ("n1", "n2")]
    body = {"tasks": keyed}
    # When the batch is sent, then sent again (a client retrying after a lost answer)
    first = api.call("POST", "/v1/tasks", json=body)
    again = api.call("POST", "/v1/tasks", json=body)
    # Then the first stored only the new one, the repeat stored nothing and answered 200
    assert first.status_code == 201
    assert again.status_code == 200
    ids = [t["task_id"] for t in first.json["tasks"]]
    assert ids[1] == single.json["task_id"]
    assert [t["task_id"] for t in again.json["tasks"]] == ids
    assert len(api.call("GET", "/v1/tasks", role="viewer").json["items"]) == 2


def test_a_viewer_may_not_create_a_batch(api: Api):
    before = snapshot(api.engine)
    result = api.call("POST", "/v1/tasks", role="viewer", json={"tasks": [item()]})
    assert result.status_code == 403
    assert snapshot(api.engine) == before
