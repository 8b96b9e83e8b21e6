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

A failure is retryable unless its report says ``retryable: false`` (a plugin's
``TaskFailed(retryable=False)``, from any step): every caller passes :func:`retryable` of
the error it settles, or False when the failure itself forbids a retry (a deadline).

A retry is not started at once: it goes back to ``init`` with ``ready_at`` after the wait
:func:`retry_wait` decides — the task's ``retry_backoff`` (``initial_second * factor^n``
for retry ``n``, at most ``max_second``, spread by ``± jitter``), or the ``retry_after``
its report asked for (a plugin's ``Retry(after=s)``) — and its record says how long and
why. Deciding it here makes every path that retries (a worker's report, ``notify``, the
Checker's lost heartbeats, a failed start) wait the same way; the queues take a task in
``init`` only once its ``ready_at`` has come.

All moves are written in the caller's transaction, so a crash never leaves a task in
``success`` or ``fail`` with nobody left to finish it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import Connection, bindparam, select

from taskscheduler.db.models import utcnow
from taskscheduler.db.tables import TASKS
from taskscheduler.tasks.bulk import Planned, apply_many
from taskscheduler.tasks.guard import GUARD_BY_ID, Applied, GuardRow
from taskworker.contract.api import NotifyBody, RetryBackoff
from taskworker.contract.fields import MAX_SECONDS
from taskworker.errors import NotFound, TaskError
from taskworker.states import Outcome, State, Trigger

Step = tuple[Trigger, Outcome | None]
#: The backoff of a task stored without one (``retry_backoff`` NULL).
DEFAULT_BACKOFF = RetryBackoff()
#: A task's stored backoff, read only when a failure is retried.
_BACKOFF_BY_ID = select(TASKS.c.retry_backoff).where(TASKS.c.id == bindparam("task_id"))


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
    backoff: Mapping[str, Any] | None = None,
) -> tuple[Trigger, Planned]:
    """:func:`plan` for the task ``row`` shows, as the first trigger and the rest of the
    chain for :func:`~taskscheduler.tasks.bulk.apply_many` (``seen``: decide from ``row``
    without reading it again; ``backoff``: the task's stored ``retry_backoff``, for the wait
    of a retry)."""
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
    then_reason = reason
    if _retries(steps):
        wait, why = retry_wait(backoff, row.retry_count, error)
        changes["ready_at"] = now + timedelta(seconds=wait)
        then_reason = f"retry {row.retry_count + 1} of {row.max_retry} in {_seconds(wait)}: {why}"
    first, *rest = steps
    return first[0], Planned(
        task_id,
        changes=changes,
        reason=reason,
        outcome=steps[-1][1],
        then=tuple(trigger.value for trigger, _ in rest),
        seen=row if seen else None,
        then_reason=then_reason,
    )


def settle(
    conn: Connection,
    task_id: int,
    *,
    success: bool,
    actor: str,
    retryable: bool,
    result: Any = None,
    error: Any = None,
    failure_outcome: Outcome = Outcome.FAILED,
    reason: str | None = None,
    now: datetime | None = None,
    seen: GuardRow | None = None,
    records: list[dict[str, Any]] | None = None,
) -> Applied:
    """Apply :func:`plan` to a stored task inside ``conn``'s transaction (caller commits).

    ``retryable`` has no default: whoever settles a failure says whether it may be retried
    (:func:`retryable` of its error, as reported). ``seen`` (the task's guard columns as the
    caller read them) spares reading the row again; ``records`` collects the transition
    records for the caller to write in one statement with others (see
    :func:`~taskscheduler.tasks.bulk.apply_many`).
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
        held=row.control_task_id is not None,
    )
    backoff = None
    if _retries(steps):  # the one case its backoff is needed: read it then only
        backoff = conn.execute(_BACKOFF_BY_ID, {"task_id": task_id}).scalar()
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
        backoff=backoff,
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


def retry_wait(
    backoff: Mapping[str, Any] | None,
    retries_done: int,
    error: Any,
    *,
    spread: Callable[[float, float], float] = random.uniform,
) -> tuple[float, str]:
    """The seconds to wait before the next retry of a task that was retried
    ``retries_done`` times, and why, for its record.

    The ``retry_after`` its failure asked for (a plugin's ``Retry(after=s)``), within 0 and
    366 days, is waited as asked; otherwise ``backoff`` (the task's stored ``retry_backoff``,
    None or unreadable: the defaults) gives ``min(max_second, initial_second * factor^n)``,
    spread by ``spread(-jitter, jitter)`` of itself, so that tasks failed together by one
    outage come back apart.
    """
    asked = _asked(error)
    if asked is not None:
        return asked, "its failure asked for it (retry_after)"
    given = _backoff(backoff)
    try:
        base = min(given.max_second, given.initial_second * given.factor**retries_done)
    except OverflowError:  # factor^n past a float: far beyond max_second anyway
        base = given.max_second
    wait = min(float(MAX_SECONDS), max(0.0, base * (1 + spread(-given.jitter, given.jitter))))
    why = (
        f"backoff {_seconds(given.initial_second)} * {given.factor:g}^{retries_done}, "
        f"at most {_seconds(given.max_second)}, ± {given.jitter:.0%}"
    )
    return wait, why


def _asked(error: Any) -> float | None:
    """The wait a failure's ``retry_after`` asks for, within the bounds of any wait; None when
    it asks for none (or for something that is not a number of seconds)."""
    if not isinstance(error, dict):
        return None
    after = error.get("retry_after")
    if isinstance(after, bool) or not isinstance(after, int | float) or math.isnan(after):
        return None
    return min(float(MAX_SECONDS), max(0.0, float(after)))


def _backoff(stored: Mapping[str, Any] | None) -> RetryBackoff:
    """A task's stored ``retry_backoff``; the defaults when it has none, or when a stored one
    no longer passes the bounds (a retry must not fail for it)."""
    if stored is None:
        return DEFAULT_BACKOFF
    try:
        return msgspec.convert(stored, RetryBackoff)
    except msgspec.ValidationError:
        return DEFAULT_BACKOFF


def _retries(steps: list[Step]) -> bool:
    return any(trigger is Trigger.RETRY for trigger, _ in steps)


def _seconds(value: float) -> str:
    """Seconds as a record reads them: ``2 s``, ``1.047 s``."""
    return f"{value:.3f}".rstrip("0").rstrip(".") + " s"
