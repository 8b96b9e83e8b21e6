"""A worker runs tasks through every step, and what it reports lands in the scheduler's DB."""

from __future__ import annotations

from tests.processes import wait_until
from tests.taskworker.server.conftest import Scheduler, Worker, runs


def test_a_shell_task_runs_and_its_logs_and_result_reach_the_scheduler_with_the_attempt(
    scheduler: Scheduler, worker: Worker
) -> None:
    # Given a shell task dispatched to the worker as attempt 1
    argv = ["sh", "-c", "echo first line; echo second line"]
    # When it is created, prepared and started there
    task_id = runs(scheduler, worker, "shell", {"argv": argv})
    # Then the scheduler records its success, result and output lines, all of attempt 1
    row = scheduler.finished(task_id)
    assert (row.outcome, row.attempt) == ("succeeded", 1)
    assert row.result["exit_code"] == 0
    assert "second line" in row.result["stdout_tail"]
    lines = wait_until(
        lambda: [r for r in scheduler.logs(task_id) if r.message.endswith(" line")], 10
    )
    assert [(r.message, r.attempt) for r in lines] == [("first line", 1), ("second line", 1)]
    # And the worker holds it in success until the scheduler's clean finishes it
    assert worker.status("shell", task_id) == "success"
    assert worker.act("shell", task_id, "clean").task_status == "finish"


def test_progress_of_a_sleep_task_reaches_the_scheduler_and_the_task_succeeds(
    scheduler: Scheduler, worker: Worker
) -> None:
    task_id = runs(scheduler, worker, "sleep", {"seconds": 0.3})
    row = scheduler.finished(task_id)
    assert row.outcome == "succeeded"
    assert row.progress_percent == 100.0
    assert row.result["slept"] >= 0.3


def test_an_asynchronous_task_stays_running_after_run_returns_until_someone_notifies(
    scheduler: Scheduler, worker: Worker
) -> None:
    # Given an external task started on the worker
    task_id = runs(scheduler, worker, "external", {"note": "backup job 7"})
    # When its run has returned (it logged that it waits)
    wait_until(lambda: any("waiting" in r.message for r in scheduler.logs(task_id)), 10)
    # Then it is still running on the worker and at the scheduler: nobody notified yet
    assert worker.status("external", task_id) == "running"
    assert scheduler.task(task_id).state == "running"


def test_a_failing_task_is_reported_failed_and_can_be_rolled_back_and_cleaned_on_the_worker(
    scheduler: Scheduler, worker: Worker
) -> None:
    # Given a fail task run on the worker
    task_id = runs(scheduler, worker, "fail", {"message": "broken on purpose"})
    # Then the scheduler records the failure with the plugin's message
    row = scheduler.finished(task_id)
    assert row.outcome == "failed"
    assert row.error["message"] == "broken on purpose"
    # And the worker rolls it back and cleans it: finished as rolled back
    assert worker.act("fail", task_id, "rollback").task_status == "rollback"
    wait_until(lambda: any("rollback" in r.message for r in scheduler.logs(task_id)), 10)
    wait_until(lambda: worker.act_or_none("fail", task_id, "clean"), 10)
    view = worker.client.request("GET", "/v1/task/fail", query={"task_id": task_id})
    assert view.json(dict)["outcome"] == "rolled_back"
