"""Random trigger sequences against a real stored task (hypothesis stateful testing).

Whatever an operator, the loops and the workers fire, in whatever order, the stored state
only ever moves along the table, a refused trigger changes nothing, and replaying the
transition records from ``none`` reproduces the stored state, outcome and paused_from.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlalchemy import select

from taskscheduler.db import migrate
from taskscheduler.db.engine import make_engine
from taskscheduler.lifecycle import RECORDS, TASKS, insert_task, transition
from taskworker.errors import TransitionRefused
from taskworker.states import Trigger, decide

_DIR = Path(tempfile.mkdtemp(prefix="ts-hypothesis-"))
_URL = f"sqlite:///{_DIR / 'tasks.db'}"
migrate.upgrade(_URL)
_ENGINE = make_engine(_URL)


def _stored(task_id: int):
    with _ENGINE.connect() as conn:
        row = conn.execute(select(TASKS).where(TASKS.c.id == task_id)).one()
        history = conn.execute(
            select(RECORDS.c.trigger, RECORDS.c.from_state, RECORDS.c.to_state, RECORDS.c.outcome)
            .where(RECORDS.c.task_id == task_id)
            .order_by(RECORDS.c.id)
        ).all()
    return row, history


class StoredTaskMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.max_retry = 2
        with _ENGINE.begin() as conn:
            self.task_id = insert_task(
                conn, {"task_type": "noop", "params": {}, "max_retry": self.max_retry}, actor="t"
            )

    @rule(
        trigger=st.sampled_from(list(Trigger)),
        outcome=st.sampled_from([None, "succeeded", "failed", "timed_out", "rollback_failed"]),
    )
    def fire(self, trigger: Trigger, outcome: str | None) -> None:
        before, records_before = _stored(self.task_id)
        try:
            transition(_ENGINE, self.task_id, trigger, actor="hypothesis", outcome=outcome)
        except TransitionRefused:
            after, records_after = _stored(self.task_id)
            assert (after.state, after.version, after.outcome) == (
                before.state,
                before.version,
                before.outcome,
            )
            assert len(records_after) == len(records_before)
            return
        after, _ = _stored(self.task_id)
        expected = decide(
            before.state,
            trigger,
            paused_from=before.paused_from,
            retry_count=before.retry_count,
            max_retry=before.max_retry,
            outcome=outcome,
        )
        assert after.state == expected.to_state
        assert after.version == before.version + 1

    @invariant()
    def records_replay_to_the_stored_state(self) -> None:
        row, history = _stored(self.task_id)
        state, outcome, paused_from, retries = "none", None, None, 0
        for trigger, from_state, to_state, recorded_outcome in history:
            assert from_state == state, "a record starts where the previous one ended"
            move = decide(
                state,
                trigger,
                paused_from=paused_from,
                retry_count=retries,
                max_retry=self.max_retry,
                outcome=recorded_outcome,
            )
            assert move.to_state == to_state
            state, paused_from = move.to_state, move.paused_from
            outcome = move.outcome or outcome
            retries += trigger == "retry"
        assert (state, outcome, paused_from, retries) == (
            row.state,
            row.outcome,
            row.paused_from,
            row.retry_count,
        )


StoredTaskMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_random_trigger_sequences_keep_the_table_and_replay = StoredTaskMachine.TestCase
