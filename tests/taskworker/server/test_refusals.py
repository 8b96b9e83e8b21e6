"""What the worker refuses: each refusal has its status, names its cause, and changes nothing."""

from __future__ import annotations

import time

import pytest
import urllib3

from taskworker import signing
from taskworker.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    Unavailable,
)
from tests.taskworker.server.conftest import SECRET, Scheduler, StartWorker, Worker, runs

HTTP = urllib3.PoolManager()


def test_an_unknown_task_type_is_404(worker: Worker) -> None:
    with pytest.raises(NotFound):
        worker.create("no_such_type", 9001)


def test_bad_params_are_400_naming_the_field_and_nothing_is_created(worker: Worker) -> None:
    # When a sleep task arrives with seconds of the wrong type
    with pytest.raises(InvalidInput) as refused:
        worker.create("sleep", 9002, params={"seconds": "soon"})
    # Then the answer names params.seconds, and the worker holds no such task
    assert refused.value.field == "params.seconds"
    with pytest.raises(NotFound):
        worker.status("sleep", 9002)


def test_an_action_the_state_table_refuses_is_409_and_the_state_stays(worker: Worker) -> None:
    # Given a task the worker has created but not prepared
    worker.create("noop", 9003)
    # When it is told to run before prepare
    with pytest.raises(Conflict) as refused:
        worker.act("noop", 9003, "running")
    # Then it refuses, naming the state, and the task is still in create
    assert "create" in refused.value.message
    assert worker.status("noop", 9003) == "create"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        signing.sign("wrong-secret", "POST", "/v1/task/noop", b"{}"),
        signing.sign(SECRET, "POST", "/v1/task/noop", b"{}", now=time.time() - 600),
    ],
    ids=["unsigned", "wrong secret", "replayed outside the window"],
)
def test_a_request_without_a_valid_signature_is_401_and_changes_nothing(
    worker: Worker, headers: dict[str, str]
) -> None:
    body = b'{"params": {}, "dispatch": {"task_id": 9004, "attempt": 1}}'
    answer = HTTP.request("POST", f"{worker.url}/v1/task/noop", body=body, headers=headers)
    assert answer.status == 401
    assert answer.json()["title"] == "Unauthorized"
    with pytest.raises(NotFound):
        worker.status("noop", 9004)


def test_a_signature_for_another_body_is_refused(worker: Worker) -> None:
    signed = signing.sign(SECRET, "POST", "/v1/task/noop", b'{"params": {}}')
    body = b'{"params": {}, "dispatch": {"task_id": 9005, "attempt": 1}}'
    answer = HTTP.request("POST", f"{worker.url}/v1/task/noop", body=body, headers=signed)
    assert answer.status == 401


def test_a_newer_attempt_replaces_the_older_and_calls_for_the_older_are_409(
    worker: Worker,
) -> None:
    # Given attempt 1 of a task on the worker, then attempt 2 of the same task
    worker.create("noop", 9006, attempt=1)
    assert worker.create("noop", 9006, attempt=2).attempt == 2
    # When the scheduler's late call for attempt 1 arrives
    with pytest.raises(Conflict) as refused:
        worker.act("noop", 9006, "prepare", attempt=1)
    # Then it is refused as stale, and attempt 2 was not moved
    assert "stale" in refused.value.message
    assert worker.status("noop", 9006) == "create"
    # And a create of attempt 1 again is refused too
    with pytest.raises(Conflict):
        worker.create("noop", 9006, attempt=1)


def test_a_full_worker_answers_503_with_retry_after(
    scheduler: Scheduler, start_worker: StartWorker
) -> None:
    # Given a worker of capacity 1 running a long sleep
    small = start_worker("w-small", capacity=1)
    busy = runs(scheduler, small, "sleep", {"seconds": 30})
    # When another task is offered
    with pytest.raises(Unavailable) as refused:
        small.create("noop", 9007)
    # Then it is refused with Retry-After, and not taken
    assert refused.value.retry_after >= 1
    with pytest.raises(NotFound):
        small.status("noop", 9007)
    small.act("sleep", busy, "cancel")
