"""/v1/workers (register, heartbeat, list, drain) and /v1/types."""

from __future__ import annotations

import pytest

from tests.taskscheduler.api.harness import SLEEP_SCHEMA, Api, snapshot


def workers(api: Api) -> dict[str, dict]:
    return {w["name"]: w for w in api.call("GET", "/v1/workers", role="viewer").json}


def test_a_registered_worker_is_listed_with_its_types(api: Api):
    listed = workers(api)["w1"]
    assert listed["status"] == "active"
    assert listed["task_types"] == ["external", "sleep"]
    assert listed["capacity"] == 4


def test_types_show_their_schema_and_every_worker_serving_them(api: Api):
    api.register_worker("w2", {"sleep": {"params_schema": SLEEP_SCHEMA}})
    types = {t["task_type"]: t for t in api.call("GET", "/v1/types", role="viewer").json}
    assert sorted(types) == ["external", "sleep"]
    assert sorted(types["sleep"]["workers"]) == ["w1", "w2"]
    assert types["sleep"]["params_schema"] == SLEEP_SCHEMA
    assert types["external"]["blocking"] is False


def test_the_newest_registration_of_a_type_decides_its_schema(api: Api):
    # Given w2 registers sleep later with a schema that also allows "jitter"
    newer = {**SLEEP_SCHEMA, "properties": {"seconds": {"type": "number"}, "jitter": {}}}
    api.register_worker("w2", {"sleep": {"params_schema": newer}})
    # Then params valid only under the new schema are accepted
    assert api.create(params={"seconds": 1, "jitter": 2})["params"]["jitter"] == 2


def test_registering_again_replaces_the_entry_and_reactivates_it(api: Api):
    assert api.call("PUT", "/v1/workers/w1/drain", role="admin").json["status"] == "draining"
    again = api.register_worker("w1", {"external": {}})
    assert again.json["status"] == "active"
    assert again.json["task_types"] == ["external"]
    assert len(workers(api)) == 1


def test_a_heartbeat_refreshes_the_worker_but_keeps_it_draining(api: Api):
    before = workers(api)["w1"]["heartbeat_at"]
    api.call("PUT", "/v1/workers/w1/drain", role="admin")
    result = api.signed("PUT", "/v1/workers/w1/heartbeat", json={"running": 2})
    assert result.status_code == 204, result.text
    after = workers(api)["w1"]
    assert after["running"] == 2
    assert after["status"] == "draining"
    assert after["heartbeat_at"] >= before


@pytest.mark.parametrize(
    ("method", "path"), [("PUT", "/v1/workers/ghost/heartbeat"), ("PUT", "/v1/workers/ghost/drain")]
)
def test_an_unknown_worker_is_a_404(sqlite_api: Api, method, path):
    before = snapshot(sqlite_api.engine)
    assert sqlite_api.call(method, path, role="admin", json={}).status_code == 404
    assert snapshot(sqlite_api.engine) == before


@pytest.mark.parametrize(
    ("registration", "field"),
    [
        ({"url": "http://x"}, "name"),
        ({"name": "w 1", "url": "http://x"}, "name"),
        ({"name": "w5", "url": "ftp://x"}, "url"),
        ({"name": "w5", "url": "http://x", "capacity": 0}, "capacity"),
        ({"name": "w5", "url": "http://x", "task_types": {"Bad-Type": {}}}, "task_types"),
        (
            {"name": "w5", "url": "http://x", "task_types": {"t": {"params_schema": {"type": 5}}}},
            "task_types.t.params_schema",
        ),
    ],
)
def test_a_bad_registration_is_a_400_naming_the_field(sqlite_api: Api, registration, field):
    before = snapshot(sqlite_api.engine)
    result = sqlite_api.call("POST", "/v1/workers", role="admin", json=registration)
    assert result.status_code == 400, result.text
    assert result.json["field"] == field
    assert snapshot(sqlite_api.engine) == before
