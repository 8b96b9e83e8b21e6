"""/v1/triggers: timed and permanent definitions, refused whole when anything is wrong."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from taskscheduler.db.tables import TRIGGERS
from tests.taskscheduler.api.harness import Api, snapshot


def trigger(**more: Any) -> dict[str, Any]:
    body = {
        "name": "nightly",
        "cron": "30 2 * * *",
        "timezone": "Europe/Berlin",
        "template": {"create_info": {"task_type": "sleep"}, "params": {"seconds": 1}},
    }
    return {**body, **more}


def stored(api: Api) -> tuple[Any, ...]:
    with api.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(TRIGGERS)).scalar_one()
    return (count, snapshot(api.engine))


def test_a_cron_trigger_is_stored_with_its_first_fire_time_and_shows_the_next_ones(api: Api):
    created = api.call("POST", "/v1/triggers", json=trigger())
    assert created.status_code == 201, created.text
    found = created.json
    assert (found["kind"], found["overlap"], found["misfire"], found["enabled"]) == (
        "timed",
        "skip",
        "fire_once",
        True,
    )
    first = datetime.fromisoformat(found["next_fire_time"])
    assert first > datetime.now(UTC) and first.astimezone().minute == 30
    shown = api.call(
        "GET", f"/v1/triggers/{found['trigger_id']}", role="viewer", params={"next": 3}
    )
    times = [datetime.fromisoformat(t) for t in shown.json["next_fire_times"]]
    assert times[0] == first and len(times) == 3
    assert all(
        later - earlier in (timedelta(hours=23), timedelta(hours=24), timedelta(hours=25))
        for earlier, later in itertools.pairwise(times)
    )
    listed = api.call("GET", "/v1/triggers", role="viewer").json
    assert [t["name"] for t in listed["items"]] == ["nightly"]


def test_pause_resume_and_delete(api: Api):
    trigger_id = api.call("POST", "/v1/triggers", json=trigger(interval_second=60, cron=None)).json[
        "trigger_id"
    ]
    paused = api.call("PUT", f"/v1/triggers/{trigger_id}", params={"action": "pause"})
    assert paused.json["enabled"] is False
    resumed = api.call("PUT", f"/v1/triggers/{trigger_id}", params={"action": "resume"})
    assert resumed.json["enabled"] is True
    assert datetime.fromisoformat(resumed.json["next_fire_time"]) > datetime.now(UTC)
    assert api.call("DELETE", f"/v1/triggers/{trigger_id}", role="admin").status_code == 204
    shown = api.call("GET", f"/v1/triggers/{trigger_id}", role="viewer")
    assert shown.status_code == 200 and shown.json["retired_at"]  # retired, never erased


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (trigger(cron="61 * * * *"), "cron"),
        (trigger(cron="* * *"), "cron"),
        (trigger(timezone="Mars/Olympus"), "timezone"),
        (trigger(interval_second=60), "cron"),
        (trigger(cron=None), "cron"),
        (trigger(cron=None, interval_second=0), "interval_second"),
        (trigger(cron=None, times=["2026-13-01T00:00:00+00:00"]), "times[0]"),
        (trigger(cron=None, times=["2020-01-01T00:00:00+00:00"]), "times"),
        (trigger(kind="permanent"), "cron"),
        (trigger(kind="sometimes"), "kind"),
        (trigger(overlap="maybe"), "overlap"),
        (trigger(template={"params": {"seconds": 1}}), "template.create_info.task_type"),
        (
            trigger(template={"create_info": {"task_type": "nosuch"}}),
            "template.create_info.task_type",
        ),
        (
            trigger(template={"create_info": {"task_type": "sleep"}, "params": {"seconds": "x"}}),
            "template.params.seconds",
        ),
        (
            trigger(
                template={
                    "create_info": {"task_type": "sleep", "idempotency_key": "k"},
                    "params": {"seconds": 1},
                }
            ),
            "template.create_info.idempotency_key",
        ),
    ],
)
def test_a_bad_trigger_is_refused_naming_the_field_and_nothing_is_stored(
    api: Api, body: dict[str, Any], field: str
):
    before = stored(api)
    result = api.call("POST", "/v1/triggers", json=body)
    assert result.status_code == 400, result.text
    assert result.json["field"] == field
    assert stored(api) == before


def test_a_second_trigger_with_the_same_name_is_a_conflict(api: Api):
    api.call("POST", "/v1/triggers", json=trigger())
    before = stored(api)
    assert api.call("POST", "/v1/triggers", json=trigger()).status_code == 409
    assert stored(api) == before


def test_triggers_need_a_viewer_to_read_an_operator_to_change_and_an_admin_to_delete(api: Api):
    trigger_id = api.call("POST", "/v1/triggers", json=trigger()).json["trigger_id"]
    before = stored(api)
    assert api.call("GET", "/v1/triggers", role=None).status_code == 401
    assert (
        api.call("POST", "/v1/triggers", json=trigger(name="x"), role="viewer").status_code == 403
    )
    assert api.call("DELETE", f"/v1/triggers/{trigger_id}", role="viewer").status_code == 403
    assert api.call("DELETE", f"/v1/triggers/{trigger_id}").status_code == 403  # an operator
    put = api.call("PUT", f"/v1/triggers/{trigger_id}", role="viewer", params={"action": "pause"})
    assert put.status_code == 403
    assert (
        api.call("PUT", f"/v1/triggers/{trigger_id}", params={"action": "stop"}).status_code == 400
    )
    assert api.call("DELETE", "/v1/triggers/999", role="admin").status_code == 404
    assert stored(api) == before
