"""A control task's pass, decided from its children's states: releases, stops, the saga."""

from __future__ import annotations

from taskscheduler.control.plan import Child, Control, Plan, decide, progress
from taskworker.states import Outcome, Trigger

TOPOLOGY = Control(state="running", kind="topology")
SAGA = Control(state="running", kind="topology", on_failure="rollback")


def child(id_, state="init", outcome=None, released=True, parents=(), **more) -> Child:
    return Child(id_, state, outcome, released, tuple(parents), **more)


def waiting(id_, parents=()) -> Child:
    return child(id_, released=False, parents=parents)


def succeeded(id_, parents=(), held=True) -> Child:
    if held:
        return child(id_, "success", parents=parents)
    return child(id_, "finish", "succeeded", parents=parents)


def diamond(a, b, c, d) -> list[Child]:
    """1 → (2, 3) → 4, each given as a function of (id, parents)."""
    return [a(1, ()), b(2, (1,)), c(3, (1,)), d(4, (2, 3))]


def test_a_diamond_releases_its_root_then_both_middles_then_the_join():
    assert decide(TOPOLOGY, diamond(waiting, waiting, waiting, waiting)).release == [1]
    assert decide(TOPOLOGY, diamond(succeeded, waiting, waiting, waiting)).release == [2, 3]
    one_middle_done = diamond(succeeded, succeeded, child, waiting)
    assert decide(TOPOLOGY, one_middle_done) == Plan()
    assert decide(TOPOLOGY, diamond(succeeded, succeeded, succeeded, waiting)).release == [4]


def test_a_topology_whose_children_all_succeeded_succeeds_and_finishes_unless_nested():
    done = diamond(succeeded, succeeded, succeeded, succeeded)
    assert decide(TOPOLOGY, done).moves == [
        (Trigger.SUCCEED, None),
        (Trigger.FINISH, Outcome.SUCCEEDED),
    ]
    nested = Control(state="running", kind="topology", held=True)
    assert decide(nested, done).moves == [(Trigger.SUCCEED, None)]


def failed(id_, parents=()) -> Child:
    return child(id_, "finish", "failed", parents=parents)


def test_a_failed_child_cancels_what_waits_and_the_topology_fails_once_nothing_runs():
    running_sibling = diamond(
        succeeded, failed, lambda i, p: child(i, "running", parents=p), waiting
    )
    plan = decide(TOPOLOGY, running_sibling)
    assert (plan.cancel, plan.release, plan.moves) == ([4], [], [])
    cancelled = lambda i, p: child(i, "finish", "cancelled", parents=p)  # noqa: E731
    settled = diamond(succeeded, failed, succeeded, cancelled)
    assert decide(TOPOLOGY, settled).moves == [
        (Trigger.FAIL, None),
        (Trigger.FINISH, Outcome.FAILED),
    ]
    assert decide(SAGA, settled).moves == [(Trigger.FAIL, None), (Trigger.ROLLBACK, None)]


def test_the_saga_undoes_children_before_their_parents_and_ends_rolled_back():
    rolling = Control(state="rollback", kind="topology")
    cancelled = lambda i, p: child(i, "finish", "cancelled", parents=p)  # noqa: E731
    # 1 → 2 → 3 (failed) → 4 (cancelled); 1 → 5
    children = [
        succeeded(1),
        succeeded(2, (1,)),
        failed(3, (2,)),
        cancelled(4, (3,)),
        succeeded(5, (1,)),
    ]
    assert decide(rolling, children).rollback == [2, 5]
    children[1] = child(2, "rollback", parents=(1,))
    children[4] = child(5, "finish", "rolled_back", parents=(1,))
    assert decide(rolling, children).rollback == []  # 1 waits for 2's rollback to end
    children[1] = child(2, "finish", "rolled_back", parents=(1,))
    assert decide(rolling, children).rollback == [1]
    children[0] = child(1, "finish", "rolled_back")
    assert decide(rolling, children).moves == [(Trigger.FINISH, Outcome.ROLLED_BACK)]
    children[0] = child(1, "finish", "rollback_failed")
    assert decide(rolling, children).moves == [(Trigger.FINISH, Outcome.ROLLBACK_FAILED)]


def test_rolling_back_a_paused_topology_undoes_started_children_and_cancels_the_rest():
    rolling = Control(state="rollback", kind="topology")
    children = [
        succeeded(1),
        child(2, "pause", paused_from="running", parents=(1,)),
        child(3, "pause", paused_from="init", parents=(1,)),
        waiting(4, (2, 3)),
    ]
    plan = decide(rolling, children)
    assert (plan.rollback, sorted(plan.cancel), plan.moves) == ([2], [3, 4], [])


def test_pause_pauses_active_children_and_continue_resumes_only_what_it_paused():
    paused = Control(state="pause", kind="topology")
    children = [succeeded(1), child(2, "running", parents=(1,)), child(3, "init", parents=(1,))]
    assert decide(paused, children).pause == [2, 3]
    after = [
        succeeded(1),
        child(2, "pause", paused_from="running", parents=(1,), paused_by_control=True),
        child(3, "pause", paused_from="init", parents=(1,)),  # paused by an operator
    ]
    assert decide(TOPOLOGY, after).resume == [2]


def test_a_finished_control_finishes_held_children_and_cancels_the_unfinished():
    cancelled = Control(state="finish", kind="topology")
    children = [succeeded(1), child(2, "running", parents=(1,)), waiting(3, (2,))]
    plan = decide(cancelled, children)
    assert (plan.finish, plan.cancel) == ([1], [2, 3])


def test_a_fan_out_follows_its_strategy_and_fails_after_the_cancels_are_in():
    serial = Control(state="running", kind="fanout", strategy="serial_blocking")
    targets = [succeeded(1), failed(2), waiting(3), waiting(4)]
    plan = decide(serial, targets)
    assert (plan.cancel, plan.moves) == ([3, 4], [])
    targets[2:] = [child(i, "finish", "cancelled") for i in (3, 4)]
    assert decide(serial, targets).moves == [(Trigger.FAIL, None), (Trigger.FINISH, Outcome.FAILED)]
    wide = Control(state="running", kind="fanout", strategy="parallel", max_parallel=2)
    assert decide(wide, [waiting(i) for i in range(1, 6)]).release == [1, 2]


def test_progress_is_the_share_of_children_that_succeeded():
    assert progress(diamond(succeeded, succeeded, child, waiting)) == (
        50.0,
        "1 waiting, 1 active, 2 succeeded",
    )


def test_the_saga_ends_what_has_nothing_to_undo_and_what_cannot_be_undone_without_workers():
    # Given a saga over 1 → 2 → 3 (failed): 1 rolls back, 2 has nothing to undo; and 4, a
    # sibling of 2 that cannot be undone
    rolling = Control(state="rollback", kind="topology")
    children = [
        child(1, "success", undo="rollback"),
        child(2, "success", parents=(1,), undo="nothing"),
        failed(3, (2,)),
        child(4, "success", parents=(1,), undo="impossible"),
    ]
    # When the pass decides
    plan = decide(rolling, children)
    # Then 2 ends rolled back and 4 rollback_failed without a rollback on their workers, and
    # 1 waits for both, in reverse order of the DAG
    assert (plan.rollback, plan.undone, plan.rollback_failed) == ([], [2], [4])
    children[1] = child(2, "finish", "rolled_back", parents=(1,), undo="nothing")
    children[3] = child(4, "finish", "rollback_failed", parents=(1,), undo="impossible")
    assert decide(rolling, children).rollback == [1]
    children[0] = child(1, "finish", "rolled_back")
    assert decide(rolling, children).moves == [(Trigger.FINISH, Outcome.ROLLBACK_FAILED)]


def test_progress_tells_every_outcome_apart():
    ended = [
        child(1, "finish", "succeeded"),
        child(2, "finish", "failed"),
        child(3, "finish", "cancelled"),
        child(4, "finish", "rolled_back"),
        child(5, "finish", "rolled_back"),
        child(6, "finish", "rollback_failed"),
        child(7, "finish", "timed_out"),
        child(8, "rollback"),
    ]
    assert progress(ended) == (
        12.5,
        "1 rolling back, 1 succeeded, 1 failed, 1 timed out, 1 cancelled, 2 rolled back, "
        "1 rollback failed",
    )
