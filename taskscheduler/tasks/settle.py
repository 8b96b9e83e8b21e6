r"""What an attempt's result does to its task: the one policy for reports, ``notify`` and
the loops.

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
from taskscheduler.tasks.bulk import Planned, apply_many
from taskscheduler.tasks.guard import GUARD_BY_ID, Applied, GuardRow
from taskworker.contract.api import NotifyBody
from taskworker.errors import NotFound, TaskError
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


def planned(
    task_id: int,
    row: GuardRow,
    *,
    success: bool,
    result: Any = None,
    error: Any = None,
    retryable: bool = True,
    failure_outcome: Outcome = Outcome.FAILED,
    reason: str | None = None,
    now: datetime,
    seen: bool = True,
) -> tuple[Trigger, Planned]:
    """:func:`plan` for the task ``row`` shows, as the first trigger and the rest of the
    chain for :func:`~taskscheduler.tasks.bulk.apply_many` (``seen``: decide from ``row``
    without reading it again)."""
    steps = plan(
        row.state,
        success=success,
        retries_left=row.retry_count < row.max_retry,
        retryable=retryable,
        failure_outcome=failure_outcome,
        held=row.control_task_id is not None,
    )
    changes: dict[str, Any] = {"result": result, "error": None if success else error}
    if row.state == State.ROLLBACK:  # the run's result stays: it says what was undone
        changes = {} if success else {"error": error}
    if any(trigger is Trigger.RETRY for trigger, _ in steps):
        changes["ready_at"] = now
    first, *rest = steps
    return first[0], Planned(
        task_id,
        changes=changes,
        reason=reason,
        outcome=steps[-1][1],
        then=tuple(trigger.value for trigger, _ in rest),
        seen=row if seen else None,
        then_reason=reason,
    )


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
    seen: GuardRow | None = None,
    records: list[dict[str, Any]] | None = None,
) -> Applied:
    """Apply :func:`plan` to a stored task inside ``conn``'s transaction (caller commits).

    ``seen`` (the task's guard columns as the caller read them) spares reading the row
    again; ``records`` collects the transition records for the caller to write in one
    statement with others (see :func:`~taskscheduler.tasks.bulk.apply_many`).
    """
    row = seen if seen is not None else conn.execute(GUARD_BY_ID, {"task_id": task_id}).first()
    if row is None:
        raise NotFound("task", task_id)
    when = now or utcnow()
    trigger, one = planned(
        task_id,
        row,
        success=success,
        result=result,
        error=error,
        retryable=retryable,
        failure_outcome=failure_outcome,
        reason=reason,
        now=when,
    )
    done = apply_many(conn, trigger, [one], actor=actor, now=when, records=records)[task_id]
    if isinstance(done, TaskError):
        raise done
    return done


def notify(
    conn: Connection,
    task_id: int,
    report: NotifyBody,
    *,
    actor: str,
    reason: str | None = None,
    seen: GuardRow | None = None,
    records: list[dict[str, Any]] | None = None,
) -> Applied:
    """An attempt's end as reported (by its worker, or by an outside system with the task's
    notify token), settled in ``conn``'s transaction."""
    return settle(
        conn,
        task_id,
        success=report.success,
        actor=actor,
        result=report.result,
        error=report.error,
        retryable=retryable(report.error),
        reason=reason,
        seen=seen,
        records=records,
    )


def retryable(error: Any) -> bool:
    """A failure is retried unless its reporter said it cannot help (``retryable: false``,
    as a plugin's ``TaskFailed(retryable=False)`` reaches the scheduler)."""
    return not (isinstance(error, dict) and error.get("retryable") is False)
