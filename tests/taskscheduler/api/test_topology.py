"""POST /v1/topology and fan-out creates: stored whole or refused whole, naming the node."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from taskscheduler.db.models import TaskEdge
from taskscheduler.db.tables import TASKS
from tests.taskscheduler.api.harness import Api, snapshot


def node(key: str, *depends_on: str, **more: Any) -> dict[str, Any]:
    return {
        "key": key,
        "task_type": "sleep",
        "params": {"seconds": 1},
        "depends_on": list(depends_on),
        **more,
    }


DIAMOND = {
    "name": "diamond",
    "on_failure": "rollback",
    "nodes": [node("a"), node("b", "a"), node("c", "a"), node("d", "b", "c")],
}


def test_a_topology_is_stored_whole_with_its_control_task_running_and_children_held(api: Api):
    result = api.call("POST", "/v1/topology", json=DIAMOND)
    assert result.status_code == 201, result.text
    control = result.json
    assert (control["task_type"], control["kind"], control["task_status"]) == (
        "topology",
        "topology",
        "running",
    )
    assert control["task_name"] == "diamond"
    ids = control["children"]
    assert set(ids) == {"a", "b", "c", "d"}
    with api.engine.connect() as conn:
        rows = {
            r.node_key: r
            for r in conn.execute(
                select(TASKS).where(TASKS.c.control_task_id == control["task_id"])
            )
        }
        edges = {(e.task_id, e.depends_on_id) for e in conn.execute(select(TaskEdge.__table__))}
    # nothing is dispatched before its control task's pass releases it
    assert {(r.state, r.ready_at) for r in rows.values()} == {("init", None)}
    assert {r.parent_task_id for r in rows.values()} == {control["task_id"]}
    assert edges == {
        (ids["b"], ids["a"]),
        (ids["c"], ids["a"]),
        (ids["d"], ids["b"]),
        (ids["d"], ids["c"]),
    }
    records = api.call("GET", f"/v1/tasks/{control['task_id']}/transitions", role="viewer").json
    assert [r["trigger"] for r in records] == ["submit", "create", "prepare", "run"]
    listed = api.call("GET", f"/v1/tasks/{control['task_id']}/children", role="viewer").json
    assert [c["node_key"] for c in listed["items"]] == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("nodes", "field", "words"),
    [
        ([node("a", "b"), node("b", "a")], "nodes", "cycle"),
        ([node("a"), node("b", "zz")], "nodes[1].depends_on", "missing key 'zz'"),
        ([node("a"), node("a")], "nodes[1].key", "duplicate"),
        ([node("a"), node("b", params={"seconds": "soon"})], "nodes[1].params.seconds", ""),
        ([node("a", task_type="nosuch")], "nodes[0].task_type", "nosuch"),
        ([], "nodes", "length >= 1"),
        (
            [node("a"), {"key": "inner", "task_type": "topology", "nodes": [node("x", "x")]}],
            "nodes[1].nodes[0].depends_on",
            "itself",
        ),
        ([node("a", nodes=[node("x")])], "nodes[0].nodes", "only a 'topology' node"),
        (
            [node("a", create_info={"idempotency_key": "k"})],
            "nodes[0].create_info.idempotency_key",
            "",
        ),
        ([node("a", create_info={"targets": []})], "nodes[0].create_info.targets", "length"),
    ],
)
def test_a_bad_topology_is_refused_naming_the_node_and_nothing_is_stored(
    api: Api, nodes: list[dict[str, Any]], field: str, words: str
):
    before = snapshot(api.engine)
    result = api.call("POST", "/v1/topology", json={"name": "bad", "nodes": nodes})
    assert result.status_code == 400, result.text
    assert result.json["field"] == field
    assert words in result.json["description"]
    assert snapshot(api.engine) == before


def test_a_topology_needs_an_operator(api: Api):
    before = snapshot(api.engine)
    assert api.call("POST", "/v1/topology", json=DIAMOND, role=None).status_code == 401
    assert api.call("POST", "/v1/topology", json=DIAMOND, role="viewer").status_code == 403
    assert snapshot(api.engine) == before


def test_a_topology_with_a_seen_idempotency_key_is_answered_with_the_first_one(api: Api):
    body = {**DIAMOND, "create_info": {"idempotency_key": "nightly-2026-11-23"}}
    first = api.call("POST", "/v1/topology", json=body)
    before = snapshot(api.engine)
    again = api.call("POST", "/v1/topology", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["task_id"] == first.json["task_id"]
    assert again.json["children"] == first.json["children"]
    assert snapshot(api.engine) == before


def test_a_create_with_targets_is_a_fan_out_with_one_child_per_target(api: Api):
    body = {
        "create_info": {
            "targets": ["db-1", "db-2", "db-3"],
            "strategy": "parallel",
            "max_parallel": 2,
        },
        "params": {"seconds": 1},
    }
    result = api.call("POST", "/v1/task/sleep", json=body)
    assert result.status_code == 201, result.text
    parent = result.json
    assert (parent["kind"], parent["task_status"], parent["strategy"]) == (
        "fanout",
        "running",
        "parallel",
    )
    children = api.call("GET", f"/v1/tasks/{parent['task_id']}/children", role="viewer").json[
        "items"
    ]
    assert [(c["target"], c["node_key"], c["task_type"]) for c in children] == [
        ("db-1", "0", "sleep"),
        ("db-2", "1", "sleep"),
        ("db-3", "2", "sleep"),
    ]
    assert {c["params"]["seconds"] for c in children} == {1}


@pytest.mark.parametrize(
    ("create_info", "field"),
    [
        ({"targets": []}, "create_info.targets"),
        ({"strategy": "parallel"}, "create_info.strategy"),
        ({"targets": ["a"], "strategy": "sideways"}, "create_info.strategy"),
        ({"control_task_id": 1}, "create_info.control_task_id"),
    ],
)
def test_a_bad_fan_out_is_refused_naming_the_field(
    api: Api, create_info: dict[str, Any], field: str
):
    before = snapshot(api.engine)
    result = api.call(
        "POST", "/v1/task/sleep", json={"create_info": create_info, "params": {"seconds": 1}}
    )
    assert result.status_code == 400, result.text
    assert result.json["field"] == field
    assert snapshot(api.engine) == before
