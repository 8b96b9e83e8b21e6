"""A worker stopped with SIGTERM loses no report and says goodbye to the scheduler."""

from __future__ import annotations

from tests.taskworker.server.conftest import Scheduler, StartWorker, runs


def test_sigterm_lets_a_short_step_finish_reports_a_long_one_interrupted_and_deregisters(
    scheduler: Scheduler, start_worker: StartWorker
) -> None:
    # Given a worker with a 1 s grace period running a short and a long sleep
    node = start_worker("w-stopping", capacity=2, worker_grace_seconds="1")
    short = runs(scheduler, node, "sleep", {"seconds": 0.5})
    long = runs(scheduler, node, "sleep", {"seconds": 60})
    # When it gets SIGTERM
    assert node.server.stop(timeout=30) == 0
    # Then the short step's result and the long step's interruption are both recorded
    assert scheduler.finished(short, timeout=5).outcome == "succeeded"
    interrupted = scheduler.finished(long, timeout=5)
    assert interrupted.outcome == "failed"
    assert interrupted.error["message"].startswith("interrupted")
    # And the scheduler knows the worker stopped
    assert scheduler.workers()["w-stopping"]["status"] == "stopped"
