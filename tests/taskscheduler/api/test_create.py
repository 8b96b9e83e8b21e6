"""POST /v1/task/{task_type}: creating tasks, refusing bad ones, and repeating safely."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select, text

from taskscheduler.db.tables import TASKS
from taskscheduler.tasks.store import insert_task
from taskscheduler.tasks.tokens import notify_token
from tests.taskscheduler.api.harness import SECRET, Api, snapshot

#: How long the race test waits for MariaDB to show the second insert running (blocked).
LOCK_WAIT_DEADLINE_SECONDS = 10


def records(api: Api, task_id: int) -> list[tuple[str, str, str]]:
    found = api.call("GET", f"/v1/tasks/{task_id}/transitions", role="viewer").json
    return [(r["trigger"], r["from_state"], r["to_state"]) for r in found]


def test_a_valid_create_stores_the_task_in_init_and_answers_201_with_a_notify_token(api: Api):
    # Given a registered sleep type
    # When an operator creates a task
    result = api.call(
        "POST",
        "/v1/task/sleep",
        json={"create_info": {"task_name": "nap", "important_level": 7}, "params": {"seconds": 2}},
    )
    # Then it is stored in init with a submit record, its fields flattened
    assert result.status_code == 201
    task = result.json
    assert task["task_status"] == "init"
    assert task["task_name"] == "nap"
    assert task["important_level"] == 7
    assert task["params"] == {"seconds": 2}
    assert task["notify_token"] == notify_token(SECRET, task["task_id"])
    assert records(api, task["task_id"]) == [("submit", "none", "init")]
    # And the record names the operator's token, not the token itself
    actor = api.call("GET", f"/v1/tasks/{task['task_id']}/transitions", role="viewer").json
    assert actor[0]["actor"].startswith("operator:")
    assert "operator-token" not in actor[0]["actor"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"params": {"seconds": "soon"}}, "params.seconds"),
        ({"params": {}}, "params.seconds"),
        ({"params": {"seconds": 1, "minutes": 2}}, "params.minutes"),
        ({"params": {"seconds": 1}, "create_info": {"bogus": 1}}, "create_info.bogus"),
        (
            {"params": {"seconds": 1}, "create_info": {"important_level": 10}},
            "create_info.important_level",
        ),
        (
            {"params": {"seconds": 1}, "create_info": {"task_type": "external"}},
            "create_info.task_type",
        ),
        (
            {"params": {"seconds": 1}, "process_arg": {"start_time": "2030-01-01T00:00:00"}},
            "process_arg.start_time",
        ),
        (
            {"params": {"seconds": 1}, "process_arg": {"task_status": "running"}},
            "process_arg.task_status",
        ),
        (
            {"params": {"seconds": 1}, "create_info": {"parent_task_id": 999}},
            "create_info.parent_task_id",
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_stores_nothing(api: Api, body, field):
    # Given the database as it is
    before = snapshot(api.engine)
    # When a create body is wrong in one field
    result = api.call("POST", "/v1/task/sleep", json=body)
    # Then the answer names that field and nothing was stored
    assert result.status_code == 400, result.text
    assert result.json["field"] == field
    assert set(result.json) == {"title", "description", "field"}
    assert snapshot(api.engine) == before


def test_a_body_that_is_not_json_is_a_400_naming_the_body(api: Api):
    before = snapshot(api.engine)
    result = api.call("POST", "/v1/task/sleep", body=b"{not json")
    assert result.status_code == 400
    assert result.json["field"] == "body"
    assert snapshot(api.engine) == before


def test_an_unregistered_type_is_a_404_and_stores_nothing(api: Api):
    before = snapshot(api.engine)
    result = api.call("POST", "/v1/task/mysql_backup", json={"params": {}})
    assert result.status_code == 404
    assert "mysql_backup" in result.json["description"]
    assert snapshot(api.engine) == before


def test_a_task_created_paused_has_a_submit_and_a_pause_record(api: Api):
    # When a task is created with task_status pause
    task = api.create(process_arg={"task_status": "pause"})
    # Then it waits in pause, remembering it was paused from init
    assert task["task_status"] == "pause"
    assert task["paused_from"] == "init"
    assert records(api, task["task_id"]) == [("submit", "none", "init"), ("pause", "init", "pause")]
    # And continue brings it back to init
    assert api.act(task["task_id"], "continue").json["task_status"] == "init"


def test_start_time_is_when_the_task_becomes_ready(api: Api):
    start = datetime(2031, 5, 4, 3, 2, 1, tzinfo=UTC)
    task = api.create(process_arg={"start_time": start.isoformat()})
    with api.engine.connect() as conn:
        ready_at = conn.execute(
            select(TASKS.c.ready_at).where(TASKS.c.id == task["task_id"])
        ).scalar_one()
    assert ready_at == start
    assert task["start_time"] == "2031-05-04T03:02:01Z"


def test_a_repeated_idempotency_key_answers_200_with_the_first_task(api: Api):
    # Given a task created with a key
    first = api.create(create_info={"idempotency_key": "nightly-42"})
    before = snapshot(api.engine)
    # When the same request comes again (even with other params)
    again = api.call(
        "POST",
        "/v1/task/sleep",
        json={"create_info": {"idempotency_key": "nightly-42"}, "params": {"seconds": 9}},
    )
    # Then it is the same task, with the same body semantics, and nothing new is stored
    assert again.status_code == 200
    assert again.json == first
    assert snapshot(api.engine) == before


def test_an_idempotency_key_used_by_another_type_is_a_409(api: Api):
    api.create(create_info={"idempotency_key": "k-1"})
    before = snapshot(api.engine)
    result = api.call("POST", "/v1/task/external", json={"create_info": {"idempotency_key": "k-1"}})
    assert result.status_code == 409
    assert snapshot(api.engine) == before


def test_children_can_name_an_existing_parent(api: Api):
    parent = api.create()
    child = api.create(create_info={"parent_task_id": parent["task_id"]})
    assert child["parent_task_id"] == parent["task_id"]


def _inserts_waiting(engine: Engine) -> int:
    """Inserts into tasks executing right now; one that cannot finish is waiting on a lock."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                    "WHERE DB = DATABASE() AND ID <> CONNECTION_ID() "
                    "AND INFO LIKE 'INSERT INTO tasks%'"
                )
            ).scalar_one()
        )


@pytest.mark.mysql
def test_a_create_racing_an_uncommitted_one_with_the_same_key_returns_the_winner(
    mysql_api: Api,
):
    mysql_engine = mysql_api.engine
    api = mysql_api
    # Given another node inserted a task with key K and has not committed yet
    answers = []
    racer = threading.Thread(
        target=lambda: answers.append(api.call("POST", "/v1/task/sleep", json=_body_with_key("K")))
    )
    with mysql_engine.connect() as winner:
        with winner.begin():
            values = {"task_type": "sleep", "params": {"seconds": 1}, "idempotency_key": "K"}
            winner_id = insert_task(winner, values, actor="other-node")
            # When a create with key K arrives: its check sees nothing, its insert waits
            racer.start()
            deadline = time.monotonic() + LOCK_WAIT_DEADLINE_SECONDS
            while not answers and _inserts_waiting(mysql_engine) == 0:
                assert time.monotonic() < deadline, "the racing insert never waited"
                time.sleep(0.01)
            assert not answers, answers[0].text
        racer.join()
    # Then it answers 200 with the winner's task, and there is one row for K
    assert answers[0].status_code == 200, answers[0].text
    assert answers[0].json["task_id"] == winner_id
    with mysql_engine.connect() as conn:
        count = conn.execute(
            select(func.count()).select_from(TASKS).where(TASKS.c.idempotency_key == "K")
        ).scalar_one()
    assert count == 1


def _body_with_key(key: str) -> dict[str, object]:
    return {"create_info": {"idempotency_key": key}, "params": {"seconds": 1}}


@pytest.mark.mysql
def test_two_concurrent_creates_with_one_key_store_one_task(mysql_api: Api):
    api = mysql_api
    # Given two clients released at the same instant, for several keys
    for key in ("a", "b", "c", "d", "e"):
        barrier = threading.Barrier(2)
        answers = []

        def send(k: str = key, gate: threading.Barrier = barrier, out: list = answers) -> None:
            gate.wait()
            out.append(api.call("POST", "/v1/task/sleep", json=_body_with_key(k)))

        threads = [threading.Thread(target=send) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Then one was created, the other got that same task
        assert sorted(a.status_code for a in answers) == [200, 201]
        assert answers[0].json["task_id"] == answers[1].json["task_id"]
    with api.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(TASKS)).scalar_one() == 5
