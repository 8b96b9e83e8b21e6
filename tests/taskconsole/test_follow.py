"""Following a task: ``watch``, ``submit --wait`` and ``logs [-f]``.

With no scheduler loops running, a background thread plays the worker's part through the
real API (progress, logs, notify) while the console follows; the console's exit code must
then be the task's outcome.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tests.processes import wait_until
from tests.taskconsole.conftest import Console, Scheduler
from tests.taskconsole.test_submit import unique

FAST = ("--interval", "0.05")


@contextmanager
def meanwhile(work: Callable[[], None]) -> Iterator[None]:
    """Run ``work`` in a thread while the block runs; its failure fails the test."""
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            work()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=guarded, daemon=True)
    thread.start()
    yield
    thread.join(30)
    assert not thread.is_alive(), "the background work did not end"
    assert not errors, errors


def act(scheduler: Scheduler, task: dict[str, Any], action: str, body: Any) -> None:
    query = {"task_id": task["task_id"], "action": action}
    scheduler.api("PUT", f"/v1/task/{task['task_type']}", params=query, json=body)


def run_and_notify(scheduler: Scheduler, task: dict[str, Any], *, success: bool) -> None:
    """What a worker does: start the task, report progress, then report the result."""
    scheduler.drive(task["task_id"], "create", "prepare", "run")
    act(scheduler, task, "progress", {"percent": 50, "message": "half way"})
    act(scheduler, task, "notify", {"success": success, "result": {"ok": success}})


def test_watch_follows_a_task_until_it_succeeds_and_exits_0(
    console: Console, scheduler: Scheduler
) -> None:
    # Given an external task about to be run by a worker
    task = console.submit("external")

    # When an operator watches it while the worker runs and finishes it
    with meanwhile(lambda: run_and_notify(scheduler, task, success=True)):
        result = console("--json", "watch", str(task["task_id"]), *FAST)

    # Then watch returned the finished task and exit code 0
    assert result.exit_code == 0, result.output
    final = json.loads(result.stdout)
    assert (final["task_status"], final["outcome"]) == ("finish", "succeeded")
    assert final["result"] == {"ok": True}


def test_watch_of_a_task_that_ends_otherwise_exits_1(console: Console) -> None:
    # Given a task cancelled by an operator
    task_id = str(console.submit()["task_id"])
    console.json("cancel", task_id)

    # When it is watched
    result = console("watch", task_id, *FAST)

    # Then a line says how it ended, the records below it who ended it, and the exit code is 1
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    ended = lines.index(f"task {task_id} finish (cancelled)")
    assert "cancel" in "".join(lines[ended + 1 :])


def test_watch_of_an_unknown_task_exits_3(console: Console) -> None:
    result = console("watch", "987654", *FAST)

    assert result.exit_code == 3


def _worker_for(scheduler: Scheduler, name: str, *, success: bool) -> Callable[[], None]:
    def work() -> None:
        page = wait_until(
            lambda: scheduler.api("GET", "/v1/tasks", params={"name": name})["items"],
            10,
            what=f"task {name} submitted",
        )
        run_and_notify(scheduler, page[0], success=success)

    return work


def test_submit_wait_exits_0_when_the_task_succeeds(console: Console, scheduler: Scheduler) -> None:
    name = unique("wait-ok")

    with meanwhile(_worker_for(scheduler, name, success=True)):
        result = console("--json", "submit", "external", "--name", name, "--wait", *FAST)

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outcome"] == "succeeded"


def test_submit_wait_exits_1_when_the_task_fails(console: Console, scheduler: Scheduler) -> None:
    name = unique("wait-fail")

    with meanwhile(_worker_for(scheduler, name, success=False)):
        result = console("submit", "external", "--name", name, "--wait", *FAST)

    assert result.exit_code == 1
    # the end, then the moves that led there
    assert "finish (failed)\nlast transitions" in result.stdout


def append_logs(scheduler: Scheduler, task_id: int, *messages: str) -> None:
    lines = [{"message": message, "level": "info"} for message in messages]
    scheduler.api("POST", f"/v1/tasks/{task_id}/logs", json={"lines": lines})


def test_logs_prints_every_line_in_order(console: Console, scheduler: Scheduler) -> None:
    # Given a task with three log lines
    task_id = console.submit()["task_id"]
    append_logs(scheduler, task_id, "one", "two", "three")

    # When the logs are printed for people and as JSON lines
    drawn = console("logs", str(task_id))
    as_json = console("--json", "logs", str(task_id))

    # Then both hold the three lines, oldest first
    assert drawn.exit_code == 0
    assert [line.rsplit(" ", 1)[-1] for line in drawn.stdout.splitlines()] == [
        "one",
        "two",
        "three",
    ]
    items = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [item["message"] for item in items] == ["one", "two", "three"]


def test_logs_follow_prints_new_lines_until_the_task_finishes(
    console: Console, scheduler: Scheduler
) -> None:
    # Given a task that has logged one line
    task = console.submit()
    append_logs(scheduler, task["task_id"], "first")

    def later() -> None:
        append_logs(scheduler, task["task_id"], "second")
        append_logs(scheduler, task["task_id"], "third")
        act(scheduler, task, "cancel", {})

    # When the operator follows the logs while more lines arrive and the task ends
    with meanwhile(later):
        result = console("--json", "logs", str(task["task_id"]), "-f", *FAST)

    # Then every line was printed once, in order, and the command ended on its own
    assert result.exit_code == 0, result.output
    messages = [json.loads(line)["message"] for line in result.stdout.splitlines()]
    assert messages == ["first", "second", "third"]


def test_logs_of_an_unknown_task_exits_3(console: Console) -> None:
    result = console("logs", "987654")

    assert result.exit_code == 3
