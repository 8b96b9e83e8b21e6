"""POST /v1/batch: many contract calls in one signed request, each answered as if alone."""

from __future__ import annotations

from typing import Any

import pytest

from taskworker.errors import Unauthorized
from tests.taskworker.server.conftest import Scheduler, Worker


def batch(worker: Worker, calls: list[dict[str, Any]]) -> list[tuple[int, Any]]:
    reply = worker.client.request("POST", "/v1/batch", body={"calls": calls})
    return [(r["status"], r["body"]) for r in reply.json(dict[str, Any])["results"]]


def create(task_type: str, task_id: int, params: dict[str, Any]) -> dict[str, Any]:
    body = {"params": params, "dispatch": {"task_id": task_id, "attempt": 1}}
    return {"call": "create", "task_type": task_type, "body": body}


def act(task_type: str, task_id: int, action: str, attempt: int = 1) -> dict[str, Any]:
    return {
        "call": "act",
        "task_type": task_type,
        "task_id": task_id,
        "attempt": attempt,
        "action": action,
    }


def test_a_batch_dispatch_runs_every_task_to_the_end(scheduler: Scheduler, worker: Worker):
    # Given three tasks the scheduler has created for this worker
    ids = [scheduler.submit("noop", {}, worker=worker.name) for _ in range(3)]
    # When the loop creates, prepares and starts them in three batch requests
    assert [s for s, _ in batch(worker, [create("noop", t, {}) for t in ids])] == [201] * 3
    prepared = batch(worker, [act("noop", t, "prepare") for t in ids])
    assert [(s, b["task_status"]) for s, b in prepared] == [(200, "prepare")] * 3
    for task_id in ids:
        scheduler.move(task_id, "prepare")
        scheduler.move(task_id, "run")
    started = batch(worker, [act("noop", t, "running") for t in ids])
    assert [s for s, _ in started] == [200] * 3
    # Then each ran and its result reached the scheduler
    assert {scheduler.finished(t).outcome for t in ids} == {"succeeded"}


def test_each_call_of_a_batch_is_judged_alone(scheduler: Scheduler, worker: Worker):
    # Given one task created on the worker
    task_id = scheduler.submit("sleep", {"seconds": 5}, worker=worker.name)
    calls = [
        create("sleep", task_id, {"seconds": 5}),
        create("sleep", task_id + 1000, {"seconds": "long"}),  # bad params
        act("nosuch", task_id, "prepare"),  # unknown type
        act("sleep", task_id, "prepare", attempt=9),  # an attempt the worker never saw
        act("sleep", task_id, "running"),  # not prepared yet
        create("sleep", task_id, {"seconds": 5}),  # the same attempt again
    ]
    # When they come in one request
    results = batch(worker, calls)
    # Then each answer is what the call alone would have got, and the good ones took effect
    assert [s for s, _ in results] == [201, 400, 404, 404, 409, 200]
    assert results[1][1]["field"] == "params.seconds"
    assert worker.status("sleep", task_id) == "create"
    assert worker.act("sleep", task_id, "cancel").task_status == "finish"


def test_a_bad_batch_is_refused_whole_and_an_unsigned_one_is_refused(worker: Worker):
    with pytest.raises(Exception, match="calls"):
        worker.client.request("POST", "/v1/batch", body={"calls": []})
    anonymous = worker.client.__class__(worker.url, "wrong-secret", name="intruder")
    with pytest.raises(Unauthorized):
        anonymous.request("POST", "/v1/batch", body={"calls": [act("noop", 1, "prepare")]})
