"""Pause, continue and cancel reach a running plugin through its checkpoints."""

from __future__ import annotations

import re
import time

from tests.processes import pid_alive, wait_until
from tests.taskworker.server.conftest import Scheduler, Worker, runs


def test_a_paused_sleep_stops_advancing_and_finishes_after_continue(
    scheduler: Scheduler, worker: Worker
) -> None:
    # Given a sleep of 1.5 s that has started to progress
    task_id = runs(scheduler, worker, "sleep", {"seconds": 1.5})
    wait_until(lambda: worker.progress("sleep", task_id) > 0, 10)
    # When it is paused
    assert worker.act("sleep", task_id, "pause").task_status == "pause"
    time.sleep(0.3)  # the step reaches its checkpoint
    held = worker.progress("sleep", task_id)
    time.sleep(0.5)
    # Then its progress stands still and the scheduler hears no end
    assert worker.progress("sleep", task_id) == held < 100
    assert scheduler.task(task_id).state == "running"
    # And after continue it finishes, reported to the scheduler
    assert worker.act("sleep", task_id, "continue").task_status == "running"
    row = scheduler.finished(task_id)
    assert row.outcome == "succeeded"
    assert row.progress_percent == 100.0


def test_cancel_of_a_running_shell_task_kills_its_process(
    scheduler: Scheduler, worker: Worker
) -> None:
    # Given a shell task running a long command, whose pid the task log names
    task_id = runs(scheduler, worker, "shell", {"argv": ["sleep", "60"]})
    started = wait_until(
        lambda: [
            m for r in scheduler.logs(task_id) if (m := re.match(r"started pid (\d+)", r.message))
        ],
        10,
    )
    pid = int(started[0].group(1))
    assert pid_alive(pid)
    # When the task is cancelled
    view = worker.act("shell", task_id, "cancel")
    # Then the worker finishes it as cancelled and its process is gone
    assert (view.task_status, view.outcome) == ("finish", "cancelled")
    wait_until(lambda: not pid_alive(pid), 10, what=f"pid {pid} gone")
    wait_until(lambda: any("cancelled" in r.message for r in scheduler.logs(task_id)), 10)
