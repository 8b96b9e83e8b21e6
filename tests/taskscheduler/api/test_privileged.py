"""Privileged task types: only an admin may submit one, by any way a task comes to exist.

The in-process API over SQLite, with a second fake worker registering a privileged type
(``deploy``) beside the harness's ordinary ones; the real processes replay the attack in
``tests/security/test_privileged.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from taskscheduler.db.tables import TRIGGERS
from tests.taskscheduler.api.harness import Api, snapshot

ANYTHING = {"type": "object"}
DEPLOY = {"deploy": {"params_schema": ANYTHING, "privileged": True}}


@pytest.fixture
def api(sqlite_api: Api) -> Api:
    """The harness's API with a worker that serves the privileged ``deploy`` type."""
    assert sqlite_api.register_worker("w2", DEPLOY).status_code == 201
    return sqlite_api


def stored(api: Api) -> tuple[Any, ...]:
    """Every task row and every trigger: what a refused request must leave as it was."""
    with api.engine.connect() as conn:
        triggers = conn.execute(select(func.count()).select_from(TRIGGERS)).scalar_one()
    return (triggers, snapshot(api.engine))


def types(api: Api) -> dict[str, bool]:
    listed = api.call("GET", "/v1/types", role="viewer")
    assert listed.status_code == 200, listed.text
    return {t["task_type"]: t["privileged"] for t in listed.json}


def deploy_node(key: str, **more: Any) -> dict[str, Any]:
    return {"key": key, "task_type": "deploy", "params": {}, **more}


def sleep_node(key: str) -> dict[str, Any]:
    return {"key": key, "task_type": "sleep", "params": {"seconds": 1}}


#: Each way an operator could get a ``deploy`` task made: (method, path, body).
WAYS = {
    "create": ("POST", "/v1/task/deploy", {"params": {}}),
    "fan-out": ("POST", "/v1/task/deploy", {"create_info": {"targets": ["a", "b"]}}),
    "batch": (
        "POST",
        "/v1/tasks",
        {
            "tasks": [
                {"create_info": {"task_type": "sleep"}, "params": {"seconds": 1}},
                {"create_info": {"task_type": "deploy"}, "params": {}},
            ]
        },
    ),
    "topology": ("POST", "/v1/topology", {"name": "t", "nodes": [deploy_node("a")]}),
    "nested topology": (
        "POST",
        "/v1/topology",
        {
            "name": "outer",
            "nodes": [
                sleep_node("first"),
                {
                    "key": "inner",
                    "task_type": "topology",
                    "depends_on": ["first"],
                    "nodes": [sleep_node("x"), deploy_node("y")],
                },
            ],
        },
    ),
    "fan-out in a topology": (
        "POST",
        "/v1/topology",
        {"name": "t", "nodes": [deploy_node("a", create_info={"targets": ["h1", "h2"]})]},
    ),
    "trigger template": (
        "POST",
        "/v1/triggers",
        {
            "name": "every-minute",
            "interval_second": 60,
            "template": {"create_info": {"task_type": "deploy"}, "params": {}},
        },
    ),
}


@pytest.mark.parametrize("way", list(WAYS))
def test_an_operator_gets_403_for_a_privileged_type_by_every_way_and_nothing_is_stored(
    api: Api, way: str
):
    # Given an API where deploy is privileged
    method, path, body = WAYS[way]
    before = stored(api)
    # When an operator submits it
    refused = api.call(method, path, json=body, role="operator")
    # Then it is refused as forbidden, naming the type, and nothing was stored
    assert refused.status_code == 403, refused.text
    assert "'deploy' is privileged" in refused.json["description"]
    assert stored(api) == before


@pytest.mark.parametrize("way", list(WAYS))
def test_an_admin_may_submit_a_privileged_type_by_every_way(api: Api, way: str):
    # Given the same requests
    method, path, body = WAYS[way]
    # When an admin makes them
    created = api.call(method, path, json=body, role="admin")
    # Then they are stored
    assert created.status_code == 201, created.text


def test_a_refused_batch_item_is_named_by_its_index(api: Api):
    # Given a batch whose second item is privileged
    _, path, body = WAYS["batch"]
    # When an operator sends it
    refused = api.call("POST", path, json=body)
    # Then the refusal names tasks[1]
    assert refused.status_code == 403
    assert refused.json["description"].startswith("tasks[1]: ")


def test_an_operator_may_not_change_the_params_of_a_privileged_task_but_an_admin_may(api: Api):
    # Given a deploy task an admin created paused (a state that takes changes)
    created = api.call(
        "POST",
        "/v1/task/deploy",
        role="admin",
        json={"params": {"step": 1}, "process_arg": {"task_status": "pause"}},
    )
    task_id = created.json["task_id"]
    before = snapshot(api.engine)
    # When an operator gives it new params
    refused = api.act(task_id, "change", task_type="deploy", json={"params": {"step": 2}})
    # Then that is refused and the task is as it was
    assert refused.status_code == 403, refused.text
    assert snapshot(api.engine) == before
    # While changing how it is run is not new work, and an admin may change its params
    retries = api.act(task_id, "change", task_type="deploy", json={"process_arg": {"max_retry": 2}})
    assert retries.status_code == 200, retries.text
    changed = api.act(
        task_id, "change", task_type="deploy", role="admin", json={"params": {"step": 2}}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json["params"] == {"step": 2}


def test_an_operator_still_submits_ordinary_types(api: Api):
    # Given the privileged type beside ordinary ones
    # When an operator submits an ordinary one
    created = api.call("POST", "/v1/task/sleep", json={"params": {"seconds": 1}})
    # Then it is accepted, and the types say which is privileged
    assert created.status_code == 201, created.text
    assert types(api) == {"sleep": False, "external": False, "deploy": True}


def test_a_type_stays_privileged_while_any_registration_of_it_says_so(api: Api):
    # Given a newer worker registering deploy without the flag
    assert api.register_worker("w3", {"deploy": {"params_schema": ANYTHING}}).status_code == 201
    # When an operator submits deploy
    refused = api.call("POST", "/v1/task/deploy", json={"params": {}})
    # Then the older registration that says privileged still holds
    assert refused.status_code == 403, refused.text
    assert types(api)["deploy"] is True


@pytest.mark.parametrize("name", ["shell", "script"])
def test_shell_and_script_are_privileged_by_name_whatever_the_worker_says(api: Api, name: str):
    # Given a worker registering a command runner without saying it is privileged
    unflagged = {name: {"params_schema": ANYTHING, "privileged": False}}
    assert api.register_worker("w4", unflagged).status_code == 201
    # When an operator submits it
    refused = api.call("POST", f"/v1/task/{name}", json={"params": {}})
    # Then it is refused all the same
    assert refused.status_code == 403, refused.text
    assert types(api)[name] is True
