"""``process_arg.retry_backoff`` and ``start_time`` through the API: stored, bounded, changed,
and followed by every path that settles a failure (a worker's reports, ``notify``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from taskscheduler.db.models import utcnow
from taskscheduler.db.tables import TASKS
from taskscheduler.locks import LocalLocks
from taskscheduler.loops.producer import ProducerLoop
from taskscheduler.queue.database import DatabaseQueue
from tests.taskscheduler.api.harness import Api, drive, snapshot

WORKER = "http://127.0.0.1:9/w1"


def stored(api: Api, task_id: int) -> Any:
    with api.engine.connect() as conn:
        return conn.execute(select(TASKS).where(TASKS.c.id == task_id)).one()


def transitions(api: Api, task_id: int) -> list[dict[str, Any]]:
    return list(api.call("GET", f"/v1/tasks/{task_id}/transitions", role="viewer").json)


def running(api: Api, **process_arg: Any) -> int:
    """A sleep task started on the fake worker w1 (attempt 1)."""
    task_id = api.create(process_arg=process_arg)["task_id"]
    drive(api.engine, task_id, "create", "prepare", "run", worker=WORKER)
    return task_id


def report_failure(api: Api, task_id: int, error: dict[str, Any]) -> None:
    item = {"kind": "notify", "task_type": "sleep", "task_id": task_id, "attempt": 1}
    batch = {"reports": [{**item, "success": False, "error": error}]}
    result = api.signed("POST", "/v1/reports", json=batch)
    assert result.json["results"][0]["status"] == 200, result.text


def test_a_backoff_given_on_create_is_stored_whole_and_none_given_means_the_defaults(api: Api):
    # Given a task created with part of a backoff, and one created without
    given = api.create(process_arg={"retry_backoff": {"initial_second": 5, "factor": 3}})
    plain = api.create()
    # Then the first stores it with the defaults for the rest, the second stores nothing
    assert stored(api, given["task_id"]).retry_backoff == {
        "initial_second": 5.0,
        "factor": 3.0,
        "max_second": 300.0,
        "jitter": 0.1,
    }
    assert stored(api, plain["task_id"]).retry_backoff is None


@pytest.mark.parametrize(
    ("backoff", "field"),
    [
        ({"initial_second": -1}, "initial_second"),
        ({"initial_second": 366 * 86400 + 1, "max_second": 366 * 86400}, "initial_second"),
        ({"factor": 0.5}, "factor"),
        ({"factor": 11}, "factor"),
        ({"max_second": 366 * 86400 + 1}, "max_second"),
        ({"initial_second": 10, "max_second": 5}, "max_second"),
        ({"jitter": -0.1}, "jitter"),
        ({"jitter": 1.5}, "jitter"),
        ({"colour": "red"}, "colour"),
        ({"initial_second": "soon"}, "initial_second"),
    ],
)
def test_a_backoff_out_of_bounds_is_a_400_naming_the_field_and_stores_nothing(
    api: Api, backoff: dict[str, Any], field: str
):
    # Given the tasks as they are
    before = snapshot(api.engine)
    # When a task is created with a backoff out of bounds
    result = api.call(
        "POST",
        "/v1/task/sleep",
        json={"params": {"seconds": 1}, "process_arg": {"retry_backoff": backoff}},
    )
    # Then it is refused naming the field, and nothing was stored
    assert result.status_code == 400, result.text
    assert result.json["field"] == f"process_arg.retry_backoff.{field}"
    assert snapshot(api.engine) == before


def test_change_sets_a_new_backoff_and_refuses_a_bad_one_naming_it(api: Api):
    # Given a task waiting in init
    task_id = api.create()["task_id"]
    # When an operator changes its backoff
    changed = api.act(task_id, "change", json={"process_arg": {"retry_backoff": {"factor": 4}}})
    # Then it is stored, whole
    assert changed.status_code == 200, changed.text
    assert stored(api, task_id).retry_backoff["factor"] == 4
    # And a bad one is refused, naming the field, with nothing changed
    before = snapshot(api.engine)
    bad = {"process_arg": {"retry_backoff": {"jitter": 2}}}
    refused = api.act(task_id, "change", json=bad)
    assert refused.status_code == 400, refused.text
    assert refused.json["field"] == "process_arg.retry_backoff.jitter"
    assert snapshot(api.engine) == before


def test_a_worker_s_failure_report_retries_after_the_task_s_backoff(api: Api):
    # Given a running task with retries left and a backoff of 30 s without jitter
    backoff = {"initial_second": 30, "jitter": 0}
    task_id = running(api, max_retry=2, retry_backoff=backoff)
    # When its worker reports the run failed
    before = utcnow()
    report_failure(api, task_id, {"message": "disk full"})
    # Then it is back in init, not in line for 30 s, and the record says so
    task = stored(api, task_id)
    assert (task.state, task.retry_count) == ("init", 1)
    assert before + timedelta(seconds=30) <= task.ready_at <= utcnow() + timedelta(seconds=30)
    retry = transitions(api, task_id)[-1]
    assert retry["reason"] == "retry 1 of 2 in 30 s: backoff 30 s * 2^0, at most 300 s, ± 0%"
    # And the queue does not hand it out before then
    queue = DatabaseQueue(api.engine)
    assert queue.take(10, task.ready_at - timedelta(seconds=1)) == []
    assert [item.task_id for item in queue.take(10, task.ready_at)] == [task_id]


def test_a_notify_asking_for_a_retry_after_5_s_is_retried_then(api: Api):
    # Given a running task with a retry left
    task_id = running(api, max_retry=1)
    # When its end is notified as a failure asking to be retried after 5 s
    body = {"success": False, "error": {"message": "later", "retry_after": 5}}
    before = utcnow()
    assert api.act(task_id, "notify", json=body).status_code == 200
    # Then it waits 5 s in init
    task = stored(api, task_id)
    assert task.state == "init"
    assert before + timedelta(seconds=5) <= task.ready_at <= utcnow() + timedelta(seconds=5)
    assert transitions(api, task_id)[-1]["reason"].startswith("retry 1 of 1 in 5 s:")


def test_a_failure_that_says_it_cannot_be_retried_finishes_with_retries_left(api: Api):
    # Given a running task with 3 retries left
    task_id = running(api, max_retry=3)
    # When its worker reports a failure that cannot be retried
    report_failure(api, task_id, {"message": "gone", "retryable": False})
    # Then it finished failed, its retries unspent
    task = stored(api, task_id)
    assert (task.state, task.outcome, task.retry_count) == ("finish", "failed", 0)


def test_a_future_start_time_shows_postpose_with_a_record_naming_when_it_starts(api: Api):
    # Given a start time an hour away
    start = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    # When a task is created with it
    task = api.create(process_arg={"start_time": start.isoformat()})
    # Then it shows postpose, its records say it was submitted and waits for that time
    assert task["task_status"] == "postpose"
    found = transitions(api, task["task_id"])
    assert [(r["trigger"], r["from_state"], r["to_state"]) for r in found] == [
        ("submit", "none", "init"),
        ("postpone", "init", "postpose"),
    ]
    assert found[1]["reason"] == f"waits for its start_time, {start.isoformat()}"
    assert found[0]["at"] == found[1]["at"]


def test_a_start_time_already_past_leaves_the_task_in_init(api: Api):
    # Given a start time a minute ago
    start = datetime.now(UTC) - timedelta(minutes=1)
    # When a task is created with it
    task = api.create(process_arg={"start_time": start.isoformat()})
    # Then it is in line at once
    assert task["task_status"] == "init"
    assert [r["trigger"] for r in transitions(api, task["task_id"])] == ["submit"]


def test_a_batch_postpones_only_its_items_whose_start_time_is_to_come(api: Api):
    # Given a batch of two tasks, one to start in an hour
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    item = {"create_info": {"task_type": "sleep"}, "params": {"seconds": 1}}
    batch = {"tasks": [{**item, "process_arg": {"start_time": later}}, item]}
    # When it is created
    result = api.call("POST", "/v1/tasks", json=batch)
    # Then the first waits in postpose, the second is in init
    assert result.status_code == 201, result.text
    assert [t["task_status"] for t in result.json["tasks"]] == ["postpose", "init"]
    first, second = (t["task_id"] for t in result.json["tasks"])
    assert [r["trigger"] for r in transitions(api, first)] == ["submit", "postpone"]
    assert [r["trigger"] for r in transitions(api, second)] == ["submit"]


def test_a_task_created_paused_with_a_future_start_time_continues_into_postpose(api: Api):
    # Given a task created paused, to start in an hour
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    task = api.create(process_arg={"start_time": later, "task_status": "pause"})
    assert (task["task_status"], task["paused_from"]) == ("pause", "postpose")
    # When it is continued
    continued = api.act(task["task_id"], "continue")
    # Then it goes back to waiting for its start time
    assert continued.json["task_status"] == "postpose"


def test_a_trigger_s_instance_with_a_future_start_time_waits_in_postpose(api: Api):
    # Given a trigger whose template starts its tasks a day from now
    later = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    template = {
        "create_info": {"task_type": "sleep"},
        "params": {"seconds": 1},
        "process_arg": {"start_time": later.isoformat()},
    }
    body = {"name": "nightly-later", "interval_second": 60, "template": template}
    created = api.call("POST", "/v1/triggers", json=body)
    assert created.status_code == 201, created.text
    # When the Producer fires it
    loop = ProducerLoop(api.engine, LocalLocks(), node="n1", lease_seconds=10)
    loop.tick(datetime.fromisoformat(created.json["next_fire_time"]) + timedelta(seconds=0.5))
    # Then its instance waits in postpose, its record naming when it starts
    with api.engine.connect() as conn:
        (instance,) = conn.execute(
            select(TASKS.c.id, TASKS.c.state).where(
                TASKS.c.trigger_id == created.json["trigger_id"]
            )
        ).all()
    assert instance.state == "postpose"
    assert transitions(api, instance.id)[-1]["reason"] == (
        f"waits for its start_time, {later.isoformat()}"
    )
