"""``taskconsole revert``: a finished task undone by a new task, or refused saying why."""

from __future__ import annotations

import httpx
import msgspec

from taskworker import signing
from tests.taskconsole.conftest import Console, Scheduler
from tests.taskscheduler.api.harness import SECRET

MIGRATE = {"migrate": {"params_schema": {"type": "object"}, "supports": ["rollback"]}}
SUCCEEDED = ("create", "prepare", "run", "succeed", "finish")


def register_migrate(scheduler: Scheduler) -> None:
    """A second worker, serving a type that rolls back."""
    registration = {"name": "w2", "url": "http://127.0.0.1:9/w2", "task_types": MIGRATE}
    body = msgspec.json.encode(registration)
    headers = signing.sign(SECRET, "POST", "/v1/workers", body, worker="w2")
    headers["Content-Type"] = "application/json"
    answer = httpx.post(f"{scheduler.url}/v1/workers", content=body, headers=headers)
    assert answer.status_code == 201, answer.text


def test_revert_makes_the_task_that_undoes_a_finished_one(
    console: Console, scheduler: Scheduler
) -> None:
    # Given a migrate task that finished succeeded
    register_migrate(scheduler)
    task_id = console.submit("migrate")["task_id"]
    scheduler.drive(task_id, *SUCCEEDED)

    # When an operator reverts it
    result = console("revert", str(task_id), "--reason", "broke the reports")

    # Then the console names the new task, which reverts it
    assert result.exit_code == 0, result.output
    made = scheduler.api("GET", "/v1/tasks", params={"type": "migrate"})["items"][0]
    assert made["reverts_task_id"] == task_id
    assert result.stdout.strip() == f"task {task_id} reverted by task {made['task_id']}: now init"


def test_revert_of_a_task_that_cannot_be_undone_exits_4_saying_why(
    console: Console, scheduler: Scheduler
) -> None:
    # Given a sleep task that finished (sleep has nothing to roll back with here)
    task_id = console.submit()["task_id"]
    scheduler.drive(task_id, *SUCCEEDED)

    # When an operator reverts it
    result = console("revert", str(task_id))

    # Then the console refuses in one line and exits 4
    assert result.exit_code == 4
    assert "cannot undo a task (its undo is impossible)" in result.stderr
