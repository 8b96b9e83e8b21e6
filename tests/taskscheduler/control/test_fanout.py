"""Fan-out strategies decide, from the targets' statuses, what starts next and how it ends."""

from __future__ import annotations

from taskscheduler.control.fanout import TargetStatus, plan
from taskworker.contract.api import Strategy
from taskworker.states import Outcome

P, R, S, F, C = (
    TargetStatus.PENDING,
    TargetStatus.RUNNING,
    TargetStatus.SUCCEEDED,
    TargetStatus.FAILED,
    TargetStatus.CANCELLED,
)


def test_serial_blocking_runs_one_at_a_time_and_stops_at_the_first_failure():
    assert plan(Strategy.SERIAL_BLOCKING, [P, P, P], None).start == [0]
    assert plan(Strategy.SERIAL_BLOCKING, [S, R, P], None).start == []
    stopped = plan(Strategy.SERIAL_BLOCKING, [S, F, P, P], None)
    assert (stopped.start, stopped.cancel, stopped.outcome) == ([], [2, 3], Outcome.FAILED)


def test_serial_nonblocking_goes_on_after_a_failure_and_then_fails():
    going_on = plan(Strategy.SERIAL_NONBLOCKING, [S, F, P], None)
    assert (going_on.start, going_on.cancel, going_on.outcome) == ([2], [], None)
    assert plan(Strategy.SERIAL_NONBLOCKING, [S, F, S], None).outcome is Outcome.FAILED


def test_parallel_keeps_max_parallel_running():
    assert plan(Strategy.PARALLEL, [P] * 5, 2).start == [0, 1]
    assert plan(Strategy.PARALLEL, [R, S, P, P, P], 2).start == [2]
    assert plan(Strategy.PARALLEL, [P] * 3, None).start == [0, 1, 2]


def test_parallel_with_a_failure_finishes_the_rest_then_fails():
    assert plan(Strategy.PARALLEL, [F, R, P], 2).start == [2]
    assert plan(Strategy.PARALLEL, [F, S, S], 2).outcome is Outcome.FAILED


def test_every_strategy_succeeds_only_when_every_target_succeeded():
    for strategy in Strategy:
        assert plan(strategy, [S, S, S], 2).outcome is Outcome.SUCCEEDED
        assert plan(strategy, [S, C], 2).outcome is Outcome.FAILED
