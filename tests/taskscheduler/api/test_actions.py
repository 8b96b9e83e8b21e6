"""PUT /v1/task/{task_type}?task_id=ID&action=A: every action, allowed and refused."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from taskworker.contract.api import Action, TaskView
from taskworker.errors import Unavailable
from tests.taskscheduler.api.harness import Api, build_api, drive, snapshot, state

#: (action, the triggers that prepare the task, its state after, the record written)
ALLOWED = [
    ("pause", [], "pause", ("pause", "init", "pause")),
    ("continue", ["pause"], "init", ("continue", "pause", "init")),
    ("cancel", ["create"], "finish", ("cancel", "create", "finish")),
    (
        "rollback",
        ["create", "prepare", "run", "fail"],
        "rollback",
        ("rollback", "fail", "rollback"),
    ),
    ("retry", ["create", "fail"], "init", ("retry", "fail", "init")),
    ("prepare", ["create"], "prepare", ("prepare", "create", "prepare")),
    ("running", ["create", "prepare"], "running", ("run", "prepare", "running")),
    ("clean", ["create", "prepare", "run", "succeed"], "finish", ("finish", "success", "finish")),
]

#: (action, the triggers that prepare the task, a body) that the state table refuses
REFUSED = [
    ("pause", ["cancel"], None),
    ("continue", [], None),
    ("cancel", ["cancel"], None),
    ("rollback", [], None),
    ("retry", ["create", "fail", "retry", "create", "fail"], None),
    ("prepare", [], None),
    ("running", ["create"], None),
    ("clean", [], None),
    ("notify", [], {"success": True}),
    ("notify", ["cancel"], {"success": False}),
]


def transitions(api: Api, task_id: int) -> list[dict[str, Any]]:
    return list(api.call("GET", f"/v1/tasks/{task_id}/transitions", role="viewer").json)


@pytest.mark.parametrize(("action", "given", "after", "record"), ALLOWED)
def test_an_allowed_action_moves_the_task_and_records_who_and_why(
    api: Api, action, given, after, record
):
    # Given a task (with one retry) brought to the action's starting state
    task_id = api.create(process_arg={"max_retry": 1})["task_id"]
    drive(api.engine, task_id, *given)
    # When an operator applies the action with a reason
    result = api.act(task_id, action, reason="maintenance window")
    # Then the task moved and the record says how, by whom and why
    assert result.status_code == 200, result.text
    assert result.json["task_status"] == after
    last = transitions(api, task_id)[-1]
    assert (last["trigger"], last["from_state"], last["to_state"]) == record
    assert last["actor"].startswith("operator:")
    assert last["reason"] == "maintenance window"


@pytest.mark.parametrize(("action", "given", "body"), REFUSED)
def test_an_action_the_state_table_refuses_is_a_409_that_changes_nothing(
    api: Api, action, given, body
):
    # Given a task in a state from which the action is not allowed
    task_id = api.create(process_arg={"max_retry": 1})["task_id"]
    drive(api.engine, task_id, *given)
    before = snapshot(api.engine)
    # When the action is applied
    result = api.act(task_id, action, json=body)
    # Then it is refused with an explanation and nothing changed
    assert result.status_code == 409, result.text
    assert "not allowed" in result.json["description"]
    assert snapshot(api.engine) == before


def test_cancel_records_the_cancelled_outcome(api: Api):
    task_id = api.create()["task_id"]
    assert api.act(task_id, "cancel").json["outcome"] == "cancelled"


def test_change_replaces_params_and_process_arg_while_the_task_waits(api: Api):
    # Given a task waiting in init
    task_id = api.create()["task_id"]
    _, _, version = state(api.engine, task_id)
    # When an operator changes its params and retry budget
    result = api.act(
        task_id, "change", json={"params": {"seconds": 5}, "process_arg": {"max_retry": 3}}
    )
    # Then both are stored, the version moved on, and the log says who changed what
    assert result.status_code == 200, result.text
    assert result.json["params"] == {"seconds": 5}
    assert result.json["max_retry"] == 3
    assert state(api.engine, task_id) == ("init", None, version + 1)
    logs = api.call("GET", f"/v1/tasks/{task_id}/logs", role="viewer").json["items"]
    assert "changed max_retry, params (operator:" in logs[-1]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"params": {"seconds": -1}}, "params.seconds"),
        ({"params": {"seconds": 1, "hours": 1}}, "params.hours"),
        ({"process_arg": {"max_retry": -1}}, "process_arg.max_retry"),
        ({"process_arg": {"task_status": "pause"}}, "process_arg.task_status"),
        ({"process_arg": {"colour": "red"}}, "process_arg.colour"),
        ({"parameters": {}}, "parameters"),
        ({}, "body"),
    ],
)
def test_a_bad_change_is_a_400_naming_the_param_and_changes_nothing(api: Api, body, field):
    task_id = api.create()["task_id"]
    before = snapshot(api.engine)
    result = api.act(task_id, "change", json=body)
    assert result.status_code == 400, result.text
    assert result.json["field"] == field
    assert snapshot(api.engine) == before


def test_change_while_running_is_a_409_that_changes_nothing(api: Api):
    task_id = api.create()["task_id"]
    drive(api.engine, task_id, "create", "prepare", "run", worker="w1")
    before = snapshot(api.engine)
    result = api.act(task_id, "change", json={"params": {"seconds": 5}})
    assert result.status_code == 409
    assert "not running" in result.json["description"]
    assert snapshot(api.engine) == before


def test_progress_and_heartbeat_are_recorded_without_moving_the_task(api: Api):
    task_id = api.create()["task_id"]
    drive(api.engine, task_id, "create", "prepare", "run", worker="w1")
    before = state(api.engine, task_id)
    assert (
        api.act(task_id, "progress", json={"percent": 55.5, "message": "half"}).status_code == 200
    )
    assert api.act(task_id, "heartbeat", json={}).status_code == 200
    assert api.get(task_id, action="progress") == {"percent": 55.5, "message": "half"}
    # The version is untouched, so these never make a concurrent transition fail
    assert state(api.engine, task_id) == before


@pytest.mark.parametrize("action", ["progress", "heartbeat"])
def test_reports_on_a_finished_task_are_a_409_that_change_nothing(api: Api, action):
    task_id = api.create()["task_id"]
    api.act(task_id, "cancel")
    before = snapshot(api.engine)
    result = api.act(task_id, action, json={"percent": 1} if action == "progress" else {})
    assert result.status_code == 409
    assert snapshot(api.engine) == before


def test_a_progress_above_100_is_a_400_naming_percent(sqlite_api: Api):
    task_id = sqlite_api.create()["task_id"]
    before = snapshot(sqlite_api.engine)
    result = sqlite_api.act(task_id, "progress", json={"percent": 101})
    assert result.status_code == 400
    assert result.json["field"] == "percent"
    assert snapshot(sqlite_api.engine) == before


def _running(api: Api, task_type: str = "external", **process_arg: Any) -> int:
    task_id = api.create(task_type=task_type, process_arg=process_arg)["task_id"]
    drive(api.engine, task_id, "create", "prepare", "run", worker="w1")
    return task_id


def test_notify_success_finishes_the_task_as_succeeded_with_its_result(api: Api):
    task_id = _running(api)
    result = api.act(task_id, "notify", task_type="external", json={"success": True, "result": 7})
    assert result.status_code == 200, result.text
    assert (result.json["task_status"], result.json["outcome"]) == ("finish", "succeeded")
    assert result.json["result"] == 7
    triggers = [t["trigger"] for t in transitions(api, task_id)]
    assert triggers[-2:] == ["succeed", "finish"]


def test_notify_failure_with_retries_left_sends_the_task_back_to_init(api: Api):
    task_id = _running(api, max_retry=2)
    body = {"success": False, "error": {"message": "disk full"}}
    result = api.act(task_id, "notify", task_type="external", json=body)
    assert result.json["task_status"] == "init"
    assert result.json["retry_count"] == 1
    assert result.json["error"] == {"message": "disk full"}
    assert [t["trigger"] for t in transitions(api, task_id)][-2:] == ["fail", "retry"]


def test_notify_failure_without_retries_left_finishes_the_task_as_failed(api: Api):
    task_id = _running(api)
    result = api.act(task_id, "notify", task_type="external", json={"success": False})
    assert (result.json["task_status"], result.json["outcome"]) == ("finish", "failed")


def test_notify_during_a_rollback_settles_the_rollback(api: Api):
    task_id = _running(api)
    drive(api.engine, task_id, "fail", "rollback")
    result = api.act(task_id, "notify", task_type="external", json={"success": False})
    assert result.json["outcome"] == "rollback_failed"


@pytest.mark.parametrize(
    ("body", "field"), [({}, "success"), ({"success": "yes"}, "success"), ([], "body")]
)
def test_a_bad_notify_body_is_a_400_naming_the_field(sqlite_api: Api, body, field):
    task_id = _running(sqlite_api)
    before = snapshot(sqlite_api.engine)
    result = sqlite_api.act(task_id, "notify", task_type="external", json=body)
    assert result.status_code == 400
    assert result.json["field"] == field
    assert snapshot(sqlite_api.engine) == before


def test_the_notify_token_reports_on_its_own_task_and_is_recorded_as_such(api: Api):
    # Given an asynchronous task and the token its create response carried
    created = api.create(task_type="external")
    task_id = created["task_id"]
    drive(api.engine, task_id, "create", "prepare", "run", worker="w1")
    # When an outside system notifies with that token in the query
    query = {"task_id": task_id, "action": "notify", "token": created["notify_token"]}
    result = api.call("PUT", "/v1/task/external", role=None, json={"success": True}, params=query)
    # Then the task finished and the record names the notify token
    assert result.status_code == 200, result.text
    assert transitions(api, task_id)[-1]["actor"] == "notify-token"


def test_a_notify_token_is_worth_nothing_for_another_task_or_action(sqlite_api: Api):
    api = sqlite_api
    first = api.create(task_type="external")
    other = _running(api)
    before = snapshot(api.engine)
    token = first["notify_token"]
    for action, task_id in (("notify", other), ("pause", first["task_id"])):
        result = api.act(
            task_id, action, task_type="external", role=None, token=token, json={"success": True}
        )
        assert result.status_code == 401, (action, result.text)
    assert snapshot(api.engine) == before


def test_a_report_from_a_superseded_attempt_is_a_409(api: Api):
    task_id = _running(api)
    before = snapshot(api.engine)
    result = api.act(task_id, "progress", task_type="external", json={"percent": 5}, attempt=0)
    assert result.status_code == 409
    assert "stale" in result.json["description"]
    assert snapshot(api.engine) == before


def test_a_signed_worker_report_is_recorded_as_that_worker(sqlite_api: Api):
    task_id = sqlite_api.create()["task_id"]
    drive(sqlite_api.engine, task_id, "create", worker="w1")
    query = {"task_id": task_id, "action": "prepare"}
    result = sqlite_api.signed("PUT", "/v1/task/sleep", params=query, worker="w1")
    assert result.status_code == 200, result.text
    assert transitions(sqlite_api, task_id)[-1]["actor"] == "worker:w1"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"action": "pause"}, "task_id"),
        ({"task_id": 1}, "action"),
        ({"task_id": 1, "action": "explode"}, "action"),
    ],
)
def test_a_put_without_a_valid_task_id_or_action_is_a_400(sqlite_api: Api, params, field):
    result = sqlite_api.call("PUT", "/v1/task/sleep", params=params)
    assert result.status_code == 400
    assert result.json["field"] == field


class RecordingWorkers:
    """Stands for the worker client: records what reached the worker, or cannot reach it."""

    def __init__(self, reachable: bool = True) -> None:
        self.reachable = reachable
        self.sent: list[tuple[int, str, str | None]] = []

    def command(self, task: TaskView, action: Action, reason: str | None) -> None:
        if not self.reachable:
            raise Unavailable(f"worker {task.worker} is unreachable", retry_after=3)
        self.sent.append((task.task_id, action.value, reason))

    def summary(self, task: TaskView) -> Any:
        return {"rows_copied": 10}


@pytest.mark.parametrize("action", ["pause", "cancel"])
def test_commands_for_a_task_on_a_worker_reach_the_worker_before_the_state_changes(
    sqlite_url: str, sqlite_engine: Engine, action
):
    workers = RecordingWorkers()
    api = build_api(sqlite_url, sqlite_engine, commands=workers)
    task_id = _running(api)
    result = api.act(task_id, action, task_type="external", reason="operator asked")
    assert result.status_code == 200, result.text
    assert workers.sent == [(task_id, action, "operator asked")]
    # And a paused task continues on its worker the same way
    if action == "pause":
        assert api.act(task_id, "continue", task_type="external").json["task_status"] == "running"
        assert workers.sent[-1] == (task_id, "continue", None)


def test_the_summary_of_a_task_on_a_worker_includes_the_plugin_summary(
    sqlite_url: str, sqlite_engine: Engine
):
    api = build_api(sqlite_url, sqlite_engine, commands=RecordingWorkers())
    task_id = _running(api)
    summary = api.get(task_id, task_type="external", action="summary")
    assert summary["plugin"] == {"rows_copied": 10}


def test_commands_for_a_task_on_no_worker_do_not_reach_any_worker(
    sqlite_url: str, sqlite_engine: Engine
):
    workers = RecordingWorkers()
    api = build_api(sqlite_url, sqlite_engine, commands=workers)
    task_id = api.create()["task_id"]
    assert api.act(task_id, "pause").status_code == 200
    assert workers.sent == []


def test_an_unreachable_worker_is_a_503_with_retry_after_and_nothing_changes(
    sqlite_url: str, sqlite_engine: Engine
):
    api = build_api(sqlite_url, sqlite_engine, commands=RecordingWorkers(reachable=False))
    task_id = _running(api)
    before = snapshot(api.engine)
    result = api.act(task_id, "pause", task_type="external")
    assert result.status_code == 503
    assert result.headers["Retry-After"] == "3"
    assert snapshot(api.engine) == before


def test_without_a_worker_client_a_task_on_a_worker_cannot_be_paused(sqlite_api: Api):
    task_id = _running(sqlite_api)
    before = snapshot(sqlite_api.engine)
    result = sqlite_api.act(task_id, "pause", task_type="external")
    assert result.status_code == 503
    assert "Retry-After" in result.headers
    assert snapshot(sqlite_api.engine) == before
