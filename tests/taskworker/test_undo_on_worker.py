"""Undo on the worker: a revert's work is the plugin's rollback of the task it reverts, and a
rollback that ended gives its slot back."""

from __future__ import annotations

from typing import Any

import pytest

from plugins.fail import Fail
from plugins.noop import Noop
from taskworker import Task, TaskContext, TaskFailed
from taskworker.client import SignedClient
from taskworker.contract.api import Action
from taskworker.contract.worker import Dispatch, Reverted, WorkerCreateBody
from taskworker.errors import Conflict
from taskworker.executor import Executor
from taskworker.reporter import Reporter
from tests.processes import wait_until

#: What each step of the plugin below saw, by task id.
SEEN: dict[int, dict[str, Any]] = {}


class AddColumn(Task):
    """Adds a column; its rollback drops the one its run added."""

    task_type = "add_column"

    def prepare(self, ctx: TaskContext) -> None:
        raise TaskFailed("the column exists already")  # a revert runs no prepare check

    def run(self, ctx: TaskContext) -> dict[str, Any]:
        return {"added": ctx.params["column"]}

    def rollback(self, ctx: TaskContext) -> None:
        SEEN[ctx.task_id] = {
            "params": ctx.params,
            "result": ctx.result,
            "reverted": ctx.reverted_task_id,
            "owner": ctx.owner_task_id,
        }


class Waits(Task):
    """An asynchronous plugin: a revert's rollback still ends as a run does."""

    task_type = "waits"
    blocking = False

    def run(self, ctx: TaskContext) -> None:
        return None

    def rollback(self, ctx: TaskContext) -> None:
        SEEN[ctx.task_id] = {"result": ctx.result}


@pytest.fixture
def executor() -> Executor:
    # reports queue up in memory: the reporter is never started, nothing is sent
    reporter = Reporter(SignedClient("http://127.0.0.1:9", "a-secret-of-16-bytes"))
    plugins = {"add_column": AddColumn, "waits": Waits, "fail": Fail, "noop": Noop}
    return Executor(
        plugins,
        reporter,
        name="w",
        capacity=1,
        grace_seconds=1,
        prepare_timeout=5,
        scheduler_url="http://127.0.0.1:9",
    )


def create(executor: Executor, task_type: str, task_id: int, **dispatch: Any) -> None:
    body = WorkerCreateBody(
        params={"column": "coupon"} if task_type == "add_column" else {},
        dispatch=Dispatch(task_id=task_id, attempt=1, **dispatch),
    )
    executor.create(task_type, body)


def ended(executor: Executor, task_type: str, task_id: int) -> Any:
    wait_until(lambda: executor.query(task_type, task_id, None, 1).task_status == "success", 10)
    return executor.query(task_type, task_id, None, 1)


def test_a_revert_runs_the_plugins_rollback_with_the_reverted_tasks_result_and_id(executor):
    # Given a revert (task 8) of task 7, which added a column
    reverts = Reverted(task_id=7, result={"added": "coupon"})
    create(executor, "add_column", 8, reverts=reverts)
    # When it is prepared and run
    prepared = executor.act("add_column", 8, Action.PREPARE, 1, b"")
    executor.act("add_column", 8, Action.RUNNING, 1, b"")
    # Then prepare ran no check of the plugin's, and its work was the rollback, told the
    # params, the result and the id of task 7, and it succeeded naming the task it reverted
    assert prepared.task_status == "prepare"
    assert ended(executor, "add_column", 8).result == {"reverted_task_id": 7}
    assert SEEN[8] == {
        "params": {"column": "coupon"},
        "result": {"added": "coupon"},
        "reverted": 7,
        "owner": 7,
    }
    # And a revert is not rolled back
    with pytest.raises(Conflict, match="a revert is not rolled back"):
        executor.act("add_column", 8, Action.ROLLBACK, 1, b"")


def test_a_revert_of_an_asynchronous_plugin_ends_when_its_rollback_returns(executor):
    create(executor, "waits", 3, reverts=Reverted(task_id=2, result={"job": 5}))
    executor.act("waits", 3, Action.PREPARE, 1, b"")
    executor.act("waits", 3, Action.RUNNING, 1, b"")
    assert ended(executor, "waits", 3).result == {"reverted_task_id": 2}
    assert SEEN[3] == {"result": {"job": 5}}


def test_a_revert_for_a_plugin_without_rollback_is_refused_at_create(executor):
    with pytest.raises(Conflict, match="cannot roll back"):
        create(executor, "noop", 4, reverts=Reverted(task_id=1))
    assert executor.status()["used"] == 0


def test_a_rollback_that_ended_gives_its_slot_back(executor):
    # Given a worker with one slot, whose task failed and was rolled back
    create(executor, "fail", 1)
    executor.act("fail", 1, Action.PREPARE, 1, b"")
    executor.act("fail", 1, Action.RUNNING, 1, b"")
    wait_until(lambda: executor.query("fail", 1, None, 1).task_status == "fail", 10)
    executor.act("fail", 1, Action.ROLLBACK, 1, b"")
    # When the rollback has ended
    wait_until(lambda: not executor._tasks.get(1).step_alive, 10)
    # Then the slot is free for the next task, and a late clean still finishes the first
    assert executor.status()["used"] == 0
    create(executor, "fail", 2)
    assert executor.act("fail", 1, Action.CLEAN, 1, b"").outcome == "rolled_back"
