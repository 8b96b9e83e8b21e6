"""Moving a task from the console: each action reaches the scheduler's state table."""

from __future__ import annotations

from sqlalchemy import func, select

from taskscheduler.db.tables import RECORDS
from tests.taskconsole.conftest import Console, Scheduler


def records(scheduler: Scheduler, task_id: int) -> int:
    with scheduler.engine.connect() as conn:
        query = select(func.count()).select_from(RECORDS).where(RECORDS.c.task_id == task_id)
        return int(conn.execute(query).scalar_one())


def test_pause_then_continue_returns_the_task_to_the_state_it_was_paused_from(
    console: Console,
) -> None:
    # Given a task waiting to be dispatched
    task_id = str(console.submit()["task_id"])

    # When an operator pauses it, then continues it
    paused = console.json("pause", task_id, "--reason", "maintenance window")
    continued = console.json("continue", task_id)

    # Then it was paused, and is back in init with the reason on record
    assert paused["task_status"] == "pause"
    assert continued["task_status"] == "init"
    history = console.json("show", task_id)["transitions"]
    assert [r["trigger"] for r in history] == ["submit", "pause", "continue"]
    assert history[1]["reason"] == "maintenance window"


def test_cancel_finishes_the_task_as_cancelled(console: Console) -> None:
    task_id = str(console.submit()["task_id"])

    result = console("cancel", task_id)

    assert result.exit_code == 0
    assert "finish (cancelled)" in result.stdout
    shown = console.json("show", task_id)
    assert (shown["task_status"], shown["outcome"]) == ("finish", "cancelled")


def test_retry_puts_a_failed_task_back_in_line(console: Console, scheduler: Scheduler) -> None:
    # Given a task that failed with a retry left
    task_id = console.submit("sleep", "--max-retry", "1")["task_id"]
    scheduler.drive(task_id, "create", "prepare", "run", "fail")

    # When an operator retries it
    retried = console.json("retry", str(task_id))

    # Then it is waiting again, one retry spent
    assert retried["task_status"] == "init"
    assert retried["retry_count"] == 1


def test_rollback_of_a_paused_task_starts_its_rollback(console: Console) -> None:
    task_id = str(console.submit()["task_id"])
    console.json("pause", task_id)

    rolled = console.json("rollback", task_id)

    assert rolled["task_status"] == "rollback"


def test_a_refused_transition_exits_4_with_the_reason_and_changes_nothing(
    console: Console, scheduler: Scheduler
) -> None:
    # Given a task waiting in init, with one transition on record
    task_id = console.submit()["task_id"]
    before = records(scheduler, task_id)

    # When an operator tries to retry it (only a failed task can be retried)
    result = console("retry", str(task_id))

    # Then the console says why in one line, exits 4, and the task did not move
    assert result.exit_code == 4
    assert result.stderr.strip().splitlines() == [
        f"error: transition not allowed: task {task_id} is in state init; retry is not allowed"
    ]
    assert console.json("show", str(task_id))["task_status"] == "init"
    assert records(scheduler, task_id) == before


def test_notify_ends_an_asynchronous_task_with_its_result(
    console: Console, scheduler: Scheduler
) -> None:
    # Given an external task whose work has started
    task_id = console.submit("external")["task_id"]
    scheduler.drive(task_id, "create", "prepare", "run")

    # When the outside system's result is reported from the console
    console.json("notify", str(task_id), "--result", '{"rows": 3}')

    # Then the task succeeded with that result
    shown = console.json("show", str(task_id))
    assert shown["result"] == {"rows": 3}
    assert (shown["task_status"], shown["outcome"]) == ("finish", "succeeded")


def test_notify_failed_records_the_error(console: Console, scheduler: Scheduler) -> None:
    task_id = console.submit("external")["task_id"]
    scheduler.drive(task_id, "create", "prepare", "run")

    console.json("notify", str(task_id), "--failed", "--error", "disk full")

    shown = console.json("show", str(task_id))
    assert (shown["task_status"], shown["outcome"]) == ("finish", "failed")
    assert "disk full" in str(shown["error"])


def test_notify_with_a_result_that_is_not_json_is_a_usage_error(
    console: Console, scheduler: Scheduler
) -> None:
    task_id = console.submit("external")["task_id"]
    scheduler.drive(task_id, "create", "prepare", "run")

    result = console("notify", str(task_id), "--result", "{rows: 3}")

    assert result.exit_code == 2
    assert "--result" in result.stderr
    assert console.json("show", str(task_id))["task_status"] == "running"


def test_acting_on_a_task_that_does_not_exist_exits_3(console: Console) -> None:
    result = console("pause", "987654")

    assert result.exit_code == 3
    assert result.stderr.strip() == "error: no task 987654"
