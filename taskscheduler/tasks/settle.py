r"""What an attempt's result does to its task: the one policy for ``notify`` and the loops.

An asynchronous task's ``notify``, a synchronous run's return, the Checker's timeouts: each
ends an attempt with success or failure, and the task's next moves follow from its state and
retry budget alone:

* running, success        → ``succeed``, ``finish`` (succeeded); a task of a topology or
  fan-out only ``succeed``\ s: it waits in ``success`` until its control task decides whether
  it finishes or is rolled back (the saga needs it there, as ``finish`` is terminal)
* running, failure        → ``fail``, then ``retry`` while retries are left and the failure
  is retryable, else ``finish`` (failed, or the given outcome such as timed_out)
* rollback, success       → ``finish`` (rolled_back)
* rollback, failure       → ``finish`` (rollback_failed)

All moves are written in the caller's transaction, so a crash never leaves a task in
``success`` or ``fail`` with nobody left to finish it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from taskscheduler.db.models import utcnow
from taskscheduler.tasks.transitions import GUARD_BY_ID, Applied, Seen, apply_trigger
from taskworker.errors import NotFound
from taskworker.states import Outcome, State, Trigger

Step = tuple[Trigger, Outcome | None]


def plan(
    state: str,
    *,
    success: bool,
    retries_left: bool,
    retryable: bool = True,
    failure_outcome: Outcome = Outcome.FAILED,
    held: bool = False,
) -> list[Step]:
    """The triggers (with the outcome of a ``finish``) that settle an attempt from ``state``.

    States with no rule get the first trigger alone, so the state table refuses it (409)
    with its usual explanation instead of this module inventing one.
    """
    if state == State.ROLLBACK:
        return [(Trigger.FINISH, Outcome.ROLLED_BACK if success else Outcome.ROLLBACK_FAILED)]
    if success:
        if held:
            return [(Trigger.SUCCEED, None)]
        return [(Trigger.SUCCEED, None), (Trigger.FINISH, Outcome.SUCCEEDED)]
    if retries_left and retryable:
        return [(Trigger.FAIL, None), (Trigger.RETRY, None)]
    return [(Trigger.FAIL, None), (Trigger.FINISH, failure_outcome)]


def settle(
    conn: Connection,
    task_id: int,
    *,
    success: bool,
    actor: str,
    result: Any = None,
    error: Any = None,
    retryable: bool = True,
    failure_outcome: Outcome = Outcome.FAILED,
    reason: str | None = None,
    now: datetime | None = None,
    seen: Any = None,
    records: list[dict[str, Any]] | None = None,
) -> list[Applied]:
    """Apply :func:`plan` to a stored task inside ``conn``'s transaction (caller commits).

    ``seen`` (the task's guard row as the caller read it) and ``records`` are passed on to
    :func:`~taskscheduler.tasks.transitions.apply_trigger`: the moves are then decided without
    reading the row again, and their records written by the caller in one statement.
    """
    row = seen if seen is not None else conn.execute(GUARD_BY_ID, {"task_id": task_id}).first()
    if row is None:
        raise NotFound("task", task_id)
    when = now or utcnow()
    steps = plan(
        row.state,
        success=success,
        retries_left=row.retry_count < row.max_retry,
        retryable=retryable,
        failure_outcome=failure_outcome,
        held=row.control_task_id is not None,
    )
    outcome_columns = {"result": result, "error": None if success else error}
    if row.state == State.ROLLBACK:  # the run's result stays: it says what was undone
        outcome_columns = {} if success else {"error": error}
    applied: list[Applied] = []
    for index, (trigger, outcome) in enumerate(steps):
        changes: dict[str, Any] = outcome_columns if index == 0 else {}
        if trigger is Trigger.RETRY:
            changes = {"ready_at": when}
        applied.append(
            apply_trigger(
                conn,
                task_id,
                trigger,
                actor=actor,
                reason=reason,
                outcome=outcome,
                changes=changes,
                now=when,
                seen=row,
                records=records,
            )
        )
        row = Seen.after(row, applied[-1])
    return applied
