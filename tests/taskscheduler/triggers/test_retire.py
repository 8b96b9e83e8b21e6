"""Triggers are retired, never erased: out of the list, still shown, never fired, ids kept."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, delete, select

from taskscheduler.db.tables import TRIGGERS
from tests.taskscheduler.api.harness import Api, build_api, snapshot


@pytest.fixture
def api(db_url: str, engine: Engine) -> Api:
    return build_api(db_url, engine)


def add(api: Api, name: str) -> dict[str, Any]:
    body = {
        "name": name,
        "interval_second": 60,
        "template": {"create_info": {"task_type": "sleep"}, "params": {"seconds": 1}},
    }
    created = api.call("POST", "/v1/triggers", json=body)
    assert created.status_code == 201, created.text
    return dict(created.json)


def listed(api: Api, **params: Any) -> list[str]:
    found = api.call("GET", "/v1/triggers", role="viewer", params=params)
    assert found.status_code == 200, found.text
    return [t["name"] for t in found.json["items"]]


def test_a_retired_trigger_leaves_the_list_but_for_include_retired_and_still_shows(api: Api):
    # Given two triggers
    add(api, "kept")
    gone = add(api, "gone")
    # When an admin deletes one
    assert api.call("DELETE", f"/v1/triggers/{gone['trigger_id']}", role="admin").status_code == 204
    # Then the list leaves it out, unless retired ones are asked for
    assert listed(api) == ["kept"]
    assert listed(api, include="retired") == ["kept", "gone"]
    # And it still shows, with when it was retired and no next fire time
    shown = api.call("GET", f"/v1/triggers/{gone['trigger_id']}", role="viewer").json
    assert shown["retired_at"] is not None
    assert (shown["enabled"], shown["next_fire_time"], shown["next_fire_times"]) == (
        False,
        None,
        [],
    )


def test_a_retired_trigger_can_be_neither_paused_nor_resumed_and_a_second_delete_changes_nothing(
    api: Api,
):
    # Given a retired trigger
    trigger_id = add(api, "gone")["trigger_id"]
    api.call("DELETE", f"/v1/triggers/{trigger_id}", role="admin")
    before = snapshot(api.engine), api.call("GET", f"/v1/triggers/{trigger_id}", role="viewer").json
    # When an operator pauses or resumes it, and an admin deletes it again
    answers = [
        api.call("PUT", f"/v1/triggers/{trigger_id}", params={"action": action})
        for action in ("pause", "resume")
    ]
    again = api.call("DELETE", f"/v1/triggers/{trigger_id}", role="admin")
    # Then both moves are refused as conflicts saying why, and nothing changed
    assert [a.status_code for a in answers] == [409, 409]
    assert all("retired" in a.json["description"] for a in answers)
    assert again.status_code == 204
    after = snapshot(api.engine), api.call("GET", f"/v1/triggers/{trigger_id}", role="viewer").json
    assert after == before


def test_an_unknown_include_is_a_400_naming_it(api: Api):
    found = api.call("GET", "/v1/triggers", role="viewer", params={"include": "deleted"})
    assert (found.status_code, found.json["field"]) == (400, "include")


def test_ids_are_never_reused_even_for_a_row_removed_by_hand(api: Api):
    # Given triggers 1 and 2, the newest retired, and a third whose row someone removed
    add(api, "one")
    second = add(api, "two")
    api.call("DELETE", f"/v1/triggers/{second['trigger_id']}", role="admin")
    third = add(api, "three")
    with api.engine.begin() as conn:
        conn.execute(delete(TRIGGERS).where(TRIGGERS.c.id == third["trigger_id"]))
    # When another trigger is created
    fourth = add(api, "four")
    # Then every trigger got an id of its own, the removed one's included
    assert second["trigger_id"] < third["trigger_id"] < fourth["trigger_id"]
    with api.engine.connect() as conn:
        ids = list(conn.execute(select(TRIGGERS.c.id).order_by(TRIGGERS.c.id)).scalars())
    assert len(ids) == 3 and fourth["trigger_id"] not in ids[:-1]


def test_a_retired_triggers_name_stays_taken(api: Api):
    trigger_id = add(api, "nightly")["trigger_id"]
    api.call("DELETE", f"/v1/triggers/{trigger_id}", role="admin")
    again = api.call(
        "POST",
        "/v1/triggers",
        json={
            "name": "nightly",
            "interval_second": 60,
            "template": {"create_info": {"task_type": "sleep"}, "params": {"seconds": 1}},
        },
    )
    assert again.status_code == 409 and "retired" in again.json["description"]
