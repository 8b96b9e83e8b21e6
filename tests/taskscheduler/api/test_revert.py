"""``action=revert`` and the ``change`` record: undoing a finished task, and changes on record.

The in-process API, on SQLite and on MariaDB, with a second fake worker registering types
whose undo differs: ``migrate`` rolls back, ``ping`` has nothing to undo, ``deploy`` rolls
back and is privileged. The harness's ``sleep`` supports no rollback (its undo: impossible).
A revert runs for real in ``tests/e2e/test_undo.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from taskscheduler.db.tables import TASKS
from tests.taskscheduler.api.harness import Api, drive, snapshot

ANYTHING = {"type": "object"}
TYPES = {
    "migrate": {"params_schema": ANYTHING, "supports": ["rollback"]},
    "ping": {"params_schema": ANYTHING, "undo": "nothing"},
    "deploy": {"params_schema": ANYTHING, "supports": ["rollback"], "privileged": True},
}
SUCCEEDED = ("create", "prepare", "run", "succeed", "finish")


@pytest.fixture
def api(api: Api) -> Api:
    assert api.register_worker("w2", TYPES).status_code == 201
    return api


def finished(api: Api, task_type: str, *triggers: str, **body: Any) -> int:
    """A task of ``task_type`` moved as its worker's reports would move it."""
    task_id = int(api.create(task_type, **body)["task_id"])
    drive(api.engine, task_id, *triggers, worker="http://127.0.0.1:9/w2")
    return task_id


def transitions(api: Api, task_id: int) -> list[dict[str, Any]]:
    return list(api.call("GET", f"/v1/tasks/{task_id}/transitions", role="viewer").json)


def test_types_show_what_undoing_their_tasks_means(api: Api):
    listed = api.call("GET", "/v1/types", role="viewer").json
    undo = {t["task_type"]: t["undo"] for t in listed}
    assert undo == {
        "migrate": "rollback",
        "ping": "nothing",
        "deploy": "rollback",
        "sleep": "impossible",
        "external": "impossible",
    }


def test_a_revert_is_a_new_task_of_the_type_linked_to_the_task_it_undoes(api: Api):
    # Given a migrate task that finished succeeded
    task_id = finished(api, "migrate", *SUCCEEDED, params={"column": "added"})
    before = api.get(task_id, "migrate")
    # When an operator reverts it, saying why
    result = api.act(task_id, "revert", task_type="migrate", reason="broke the reports")
    # Then a new task of the type is created to undo it, with its params, waiting to start
    assert result.status_code == 201, result.text
    made = result.json
    assert made["task_id"] != task_id
    assert (made["task_type"], made["task_status"]) == ("migrate", "init")
    assert (made["reverts_task_id"], made["params"]) == (task_id, {"column": "added"})
    # And its submit record names the task it reverts, who asked and why
    submit = transitions(api, made["task_id"])[0]
    assert submit["trigger"] == "submit"
    assert submit["actor"].startswith("operator")
    assert submit["reason"] == f"reverts task {task_id}: broke the reports"
    # And the reverted task is as it was
    assert api.get(task_id, "migrate") == before


@pytest.mark.parametrize(
    ("task_type", "triggers", "why"),
    [
        ("migrate", ("create", "prepare", "run", "fail", "finish"), "finish (failed)"),
        ("migrate", ("create", "prepare", "run"), "is running"),
        ("ping", SUCCEEDED, "has nothing to undo"),
        ("sleep", SUCCEEDED, "cannot undo a task (its undo is impossible)"),
    ],
)
def test_a_revert_is_409_and_stores_nothing_unless_a_task_succeeded_that_its_plugin_can_undo(
    api: Api, task_type, triggers, why
):
    # Given a task that failed, still runs, has nothing to undo, or cannot be undone
    body = {"params": {"seconds": 1}} if task_type == "sleep" else {}
    task_id = finished(api, task_type, *triggers, **body)
    before = snapshot(api.engine)
    # When an operator reverts it
    result = api.act(task_id, "revert", task_type=task_type)
    # Then it is refused, saying why, and nothing changed
    assert result.status_code == 409, result.text
    assert why in result.json["description"]
    assert snapshot(api.engine) == before


def test_a_task_has_one_revert_at_a_time_and_a_revert_is_not_reverted(api: Api):
    # Given a reverted task whose revert has not run yet
    task_id = finished(api, "migrate", *SUCCEEDED)
    revert_id = api.act(task_id, "revert", task_type="migrate").json["task_id"]
    before = snapshot(api.engine)
    # When an operator reverts it again, or reverts the revert once it succeeded
    again = api.act(task_id, "revert", task_type="migrate")
    drive(api.engine, revert_id, *SUCCEEDED, worker="http://127.0.0.1:9/w2")
    after_success = api.act(task_id, "revert", task_type="migrate")
    of_revert = api.act(revert_id, "revert", task_type="migrate")
    # Then each is refused and names the revert there is
    assert [r.status_code for r in (again, after_success, of_revert)] == [409, 409, 409]
    assert f"already has a revert: task {revert_id} (init)" in again.json["description"]
    assert f"task {revert_id} (succeeded)" in after_success.json["description"]
    assert "a revert is not reverted" in of_revert.json["description"]
    with api.engine.connect() as conn:
        reverts = conn.execute(select(TASKS.c.id).where(TASKS.c.reverts_task_id == task_id))
        assert [row.id for row in reverts] == [revert_id]
    assert len(snapshot(api.engine)[0]) == len(before[0])


def test_a_failed_revert_leaves_the_task_to_be_reverted_again(api: Api):
    # Given a revert that failed
    task_id = finished(api, "migrate", *SUCCEEDED)
    first = api.act(task_id, "revert", task_type="migrate").json["task_id"]
    drive(api.engine, first, "create", "prepare", "run", "fail", "finish")
    # When an operator reverts the task again
    second = api.act(task_id, "revert", task_type="migrate")
    # Then a second revert is made
    assert second.status_code == 201, second.text
    assert second.json["reverts_task_id"] == task_id


def test_reverting_needs_an_operator_and_a_privileged_type_an_admin(api: Api):
    # Given finished tasks of an ordinary and of a privileged type
    ordinary = finished(api, "migrate", *SUCCEEDED)
    deploy = api.call("POST", "/v1/task/deploy", json={"params": {}}, role="admin").json
    drive(api.engine, deploy["task_id"], *SUCCEEDED, worker="http://127.0.0.1:9/w2")
    # When a viewer, then an operator, then an admin revert them
    viewer = api.act(ordinary, "revert", task_type="migrate", role="viewer")
    operator = api.act(deploy["task_id"], "revert", task_type="deploy")
    admin = api.act(deploy["task_id"], "revert", task_type="deploy", role="admin")
    # Then the viewer and the operator of the privileged type are refused, the admin is not
    assert (viewer.status_code, operator.status_code, admin.status_code) == (403, 403, 201)
    assert "privileged" in operator.json["description"]


def test_a_change_is_recorded_with_who_changed_what_in_the_state_it_left(api: Api):
    # Given a task waiting in init
    task_id = api.create(process_arg={"max_retry": 0, "deadline_second": 3600})["task_id"]
    # When an operator changes its params and retry budget, saying why
    changed = api.act(
        task_id,
        "change",
        json={"params": {"seconds": 5}, "process_arg": {"max_retry": 3}},
        reason="longer wait",
    )
    assert changed.status_code == 200, changed.text
    # Then a change record says who changed what, from what to what, without the params
    record = transitions(api, task_id)[-1]
    assert (record["trigger"], record["from_state"], record["to_state"]) == (
        "change",
        "init",
        "init",
    )
    assert record["actor"].startswith("operator")
    assert record["reason"] == "changed max_retry 0 -> 3, params replaced: longer wait"


def test_a_refused_change_writes_no_record(api: Api):
    task_id = api.create()["task_id"]
    before = snapshot(api.engine)
    refused = api.act(task_id, "change", json={"process_arg": {"max_retry": -1}})
    assert refused.status_code == 400
    assert snapshot(api.engine) == before
