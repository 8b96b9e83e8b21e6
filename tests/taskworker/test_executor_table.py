"""The worker's table of tasks: finished tasks free their slot and stay queryable, up to a
bound, however many tasks the worker has run."""

from __future__ import annotations

import pytest

from plugins.noop import Noop
from taskworker import executor as executor_module
from taskworker.client import SignedClient
from taskworker.contract.api import Action
from taskworker.contract.codec import decode
from taskworker.contract.worker import WorkerCreateBody
from taskworker.errors import NotFound, PoolFull
from taskworker.executor import Executor
from taskworker.reporter import Reporter
from tests.processes import wait_until


@pytest.fixture
def executor(monkeypatch: pytest.MonkeyPatch) -> Executor:
    monkeypatch.setattr(executor_module, "KEEP_FINISHED", 3)
    # reports queue up in memory: the reporter is never started, nothing is sent
    reporter = Reporter(SignedClient("http://127.0.0.1:9", "secret"))
    return Executor(
        {"noop": Noop},
        reporter,
        name="w",
        capacity=1,
        grace_seconds=1,
        prepare_timeout=5,
        scheduler_url="http://127.0.0.1:9",
    )


def run_to_the_end(executor: Executor, task_id: int, *, clean: bool = True) -> None:
    body = decode(
        b'{"params": {}, "dispatch": {"task_id": %d, "attempt": 1}}' % task_id,
        WorkerCreateBody,
        root="",
    )
    executor.create("noop", body)
    executor.act("noop", task_id, Action.PREPARE, 1, b"")
    executor.act("noop", task_id, Action.RUNNING, 1, b"")
    wait_until(lambda: executor.query("noop", task_id, None, 1).task_status == "success", 10)
    if clean:
        executor.act("noop", task_id, Action.CLEAN, 1, b"")


def test_finished_tasks_free_their_slot_and_the_last_ones_stay_queryable(executor: Executor):
    # Given a worker with one slot, which ran five tasks one after the other
    for task_id in range(1, 6):
        run_to_the_end(executor, task_id)
    # Then its one slot is free, and the last three (its bound) still answer
    assert executor.status()["used"] == 0
    assert [executor.query("noop", t, None, 1).task_status for t in (3, 4, 5)] == ["finish"] * 3
    # And older ones are forgotten
    for task_id in (1, 2):
        with pytest.raises(NotFound):
            executor.query("noop", task_id, None, 1)


def test_tasks_that_succeeded_and_wait_for_clean_hold_no_slot_and_can_still_be_cleaned(
    executor: Executor,
):
    # Given a worker with one slot whose five tasks ended in success, never cleaned
    for task_id in range(1, 6):
        run_to_the_end(executor, task_id, clean=False)
    # Then the slot is free, and a late clean of a recent one still finishes it
    assert executor.status()["used"] == 0
    assert executor.act("noop", 5, Action.CLEAN, 1, b"").task_status == "finish"


def test_a_task_holding_the_only_slot_keeps_the_next_one_out(executor: Executor):
    body = decode(
        b'{"params": {}, "dispatch": {"task_id": 1, "attempt": 1}}', WorkerCreateBody, root=""
    )
    executor.create("noop", body)
    other = decode(
        b'{"params": {}, "dispatch": {"task_id": 2, "attempt": 1}}', WorkerCreateBody, root=""
    )
    with pytest.raises(PoolFull):
        executor.create("noop", other)
