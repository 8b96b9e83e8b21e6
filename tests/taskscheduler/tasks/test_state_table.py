"""The state table of DESIGN §3, checked against an independent literal expectation.

The same expectation then judges random trigger sequences fired at a real stored task
(hypothesis stateful testing): whatever operators, loops and workers fire, in whatever
order, the stored state only moves along the table, a refused trigger changes nothing, and
replaying the transition records from ``none`` reproduces the stored state.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import Engine, select

from taskscheduler.db import migrate
from taskscheduler.db.engine import make_engine
from taskscheduler.db.tables import RECORDS, TASKS
from taskscheduler.tasks.store import insert_task
from taskscheduler.tasks.transitions import apply_trigger
from taskworker.errors import TransitionRefused
from taskworker.states import Outcome, State, Trigger, allowed_triggers, decide

ALL = [s.value for s in State]
#: Written out by hand from DESIGN §3 (not derived from the code under test).
EXPECTED: dict[str, dict[str, str]] = {
    "submit": {"none": "init"},
    "create": {"init": "create"},
    "prepare": {"create": "prepare"},
    "postpone": {"init": "postpose", "create": "postpose", "prepare": "postpose"},
    "requeue": {"postpose": "init"},
    "run": {"prepare": "running"},
    "pause": dict.fromkeys(("init", "create", "prepare", "postpose", "running"), "pause"),
    "succeed": {"running": "success"},
    "fail": {"create": "fail", "prepare": "fail", "running": "fail"},
    "retry": {"fail": "init"},
    "rollback": {"fail": "rollback", "success": "rollback", "pause": "rollback"},
    "finish": {"success": "finish", "fail": "finish", "rollback": "finish"},
    "cancel": {s: "finish" for s in ALL if s != "finish"},
}
ALLOWED = [(t, src, dst) for t, row in EXPECTED.items() for src, dst in row.items()]
REFUSED = [(t, s) for t in EXPECTED for s in ALL if s not in EXPECTED[t] and t != "continue"]


@pytest.mark.parametrize(("trigger", "source", "dest"), ALLOWED)
def test_every_allowed_transition_reaches_its_destination(trigger, source, dest):
    move = decide(source, trigger, retry_count=0, max_retry=1)
    assert (move.from_state, move.to_state) == (source, dest)


@pytest.mark.parametrize(("trigger", "source"), REFUSED)
def test_every_transition_the_table_lacks_is_refused(trigger, source):
    with pytest.raises(TransitionRefused) as refused:
        decide(source, trigger, task_id=7, retry_count=0, max_retry=1)
    assert refused.value.http_status == 409
    assert f"task 7 is in state {source}; {trigger} is not allowed" in str(refused.value)


@pytest.mark.parametrize("paused_from", ["init", "create", "prepare", "postpose", "running"])
def test_continue_returns_to_the_state_the_task_was_paused_from(paused_from):
    paused = decide(paused_from, "pause")
    assert paused.paused_from == paused_from
    resumed = decide("pause", "continue", paused_from=paused.paused_from)
    assert resumed.to_state == paused_from
    assert resumed.paused_from is None


@pytest.mark.parametrize("source", [s for s in ALL if s != "pause"])
def test_continue_is_refused_unless_paused(source):
    with pytest.raises(TransitionRefused):
        decide(source, "continue", paused_from="running")


def test_continue_without_a_remembered_state_is_refused():
    with pytest.raises(TransitionRefused, match="not paused from a resumable state"):
        decide("pause", "continue", paused_from=None)


def test_retry_is_allowed_only_below_max_retry():
    assert decide("fail", "retry", retry_count=1, max_retry=2).to_state == "init"
    with pytest.raises(TransitionRefused, match="retry_count 2 has reached max_retry 2"):
        decide("fail", "retry", retry_count=2, max_retry=2)


@pytest.mark.parametrize(
    ("source", "expected"),
    [("success", "succeeded"), ("fail", "failed"), ("rollback", "rolled_back")],
)
def test_finish_defaults_its_outcome_from_the_state_it_leaves(source, expected):
    assert decide(source, "finish").outcome == expected


@pytest.mark.parametrize(
    ("source", "outcome"),
    [("fail", "timed_out"), ("rollback", "rollback_failed"), ("success", "succeeded")],
)
def test_finish_accepts_the_outcomes_its_source_allows(source, outcome):
    assert decide(source, "finish", outcome=outcome).outcome == outcome


@pytest.mark.parametrize(
    ("source", "outcome"),
    [("success", "failed"), ("fail", "succeeded"), ("rollback", "timed_out"), ("fail", "bogus")],
)
def test_finish_refuses_an_outcome_its_source_does_not_allow(source, outcome):
    with pytest.raises(TransitionRefused):
        decide(source, "finish", outcome=outcome)


@pytest.mark.parametrize("source", [s for s in ALL if s != "finish"])
def test_cancel_finishes_from_every_state_with_outcome_cancelled(source):
    move = decide(source, "cancel", outcome="succeeded")
    assert (move.to_state, move.outcome) == ("finish", Outcome.CANCELLED)


def test_only_finish_carries_an_outcome():
    assert decide("running", "succeed").outcome is None
    assert decide("running", "fail").outcome is None


def test_unknown_states_and_triggers_are_refused_not_crashed():
    with pytest.raises(TransitionRefused):
        decide("flying", "submit")
    with pytest.raises(TransitionRefused):
        decide("init", "explode")


def test_allowed_triggers_lists_what_a_409_can_suggest():
    assert set(allowed_triggers("running")) == {
        Trigger.PAUSE,
        Trigger.SUCCEED,
        Trigger.FAIL,
        Trigger.CANCEL,
    }
    assert allowed_triggers(State.FINISH) == []


def literal_destination(state: str, trigger: str, paused_from: str | None) -> str | None:
    """Where the hand-written expectation says ``trigger`` leads from ``state`` (None: nowhere)."""
    if trigger == "continue":
        return paused_from if state == "pause" else None
    return EXPECTED[trigger].get(state)


#: Triggers a table may refuse although the row exists: a guard (retries) or a bad outcome.
GUARDED = {"retry", "finish"}
MAX_RETRY = 2


class StoredTask(RuleBasedStateMachine):
    """One real task row; every rule is a trigger somebody might fire at it."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        with engine.begin() as conn:
            values = {"task_type": "noop", "params": {}, "max_retry": MAX_RETRY}
            self.task_id = insert_task(conn, values, actor="operator")

    def stored(self):
        with self.engine.connect() as conn:
            row = conn.execute(select(TASKS).where(TASKS.c.id == self.task_id)).one()
            history = conn.execute(
                select(RECORDS.c.trigger, RECORDS.c.from_state, RECORDS.c.to_state)
                .add_columns(RECORDS.c.outcome)
                .where(RECORDS.c.task_id == self.task_id)
                .order_by(RECORDS.c.id)
            ).all()
        return row, history

    @rule(
        trigger=st.sampled_from([t.value for t in Trigger]),
        outcome=st.sampled_from([None, *(o.value for o in Outcome)]),
    )
    def fire(self, trigger: str, outcome: str | None) -> None:
        # Given the stored task as it is now
        before, history_before = self.stored()
        # When somebody fires the trigger in a transaction of their own
        try:
            with self.engine.begin() as conn:
                apply_trigger(conn, self.task_id, trigger, actor="fuzz", outcome=outcome)
        except TransitionRefused:
            # Then a refusal was the table's (or a guard's) to make, and nothing changed
            allowed = literal_destination(before.state, trigger, before.paused_from)
            assert allowed is None or trigger in GUARDED
            after, history_after = self.stored()
            assert after == before
            assert len(history_after) == len(history_before)
            return
        # Then the task moved where the table says, one version and one record further
        after, history_after = self.stored()
        assert after.state == literal_destination(before.state, trigger, before.paused_from)
        assert after.version == before.version + 1
        assert len(history_after) == len(history_before) + 1

    @invariant()
    def the_records_replay_to_the_stored_row(self) -> None:
        row, history = self.stored()
        state, outcome, paused_from, retries = "none", None, None, 0
        for trigger, from_state, to_state, recorded_outcome in history:
            assert from_state == state, "each record starts where the previous one ended"
            assert to_state == literal_destination(state, trigger, paused_from)
            paused_from = state if trigger == "pause" else None
            state, outcome = to_state, recorded_outcome or outcome
            retries += trigger == "retry"
        assert (state, outcome, paused_from) == (row.state, row.outcome, row.paused_from)
        assert retries == row.retry_count <= MAX_RETRY


def test_random_trigger_sequences_on_a_stored_task_keep_to_the_table(sqlite_url):
    migrate.upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        run_state_machine_as_test(
            lambda: StoredTask(engine),
            settings=settings(
                max_examples=60,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        engine.dispose()
