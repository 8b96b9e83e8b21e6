"""What a task's end does beyond its own row: its resource locks, its waiters, its callback.

A task of a topology or fan-out also has its control task looked at again when it
succeeds or ends (:func:`taskscheduler.control.kinds.after_move`).

Locks and waiters are handled inside the transaction that moves the task, by
:func:`after_move` (called from :func:`taskscheduler.tasks.transitions.apply_trigger`), so
every path that ends an attempt — a worker's report, an outside ``notify``, the Checker, an
operator's cancel — releases the same way,
and a crash can never leave a finished task holding a lock:

* a task holds ``resource:<name>`` leases from ``prepare`` until it stops working on them
  (``finish``, a ``retry`` back to ``init``, a ``postpone``); releasing them sets
  ``ready_at`` of the postponed tasks waiting on those names to now, so the Checker
  requeues them on its next pass instead of them polling the lock;
* an attempt that ended (``finish``, or ``retry`` back to ``init``) frees a slot of its
  type, so the tasks postponed by the type's concurrency limit are woken the same way.

A move to ``finish`` is also noted for :mod:`taskscheduler.tasks.waiters`, which tells the
requests waiting for the task once the transaction has committed.

The ``callback_url`` is an HTTP call and never runs inside a transaction: the
:class:`~taskscheduler.loops.callbacks.CallbackLoop` delivers it after the commit, with
:func:`deliver`, and records each try in the task's log.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

import urllib3
from sqlalchemy import Connection, Table, select, update

from taskscheduler.control import kinds as controls
from taskscheduler.db.models import Task
from taskscheduler.locks import leases
from taskscheduler.tasks import waiters as finished
from taskworker.states import Move, State, Trigger

TASKS = cast(Table, Task.__table__)
_c = TASKS.c
RESOURCE_PREFIX = "resource:"
#: States of an attempt that has a worker's slot (they count against a type's limit).
WORKING = frozenset({State.CREATE, State.PREPARE, State.RUNNING, State.ROLLBACK, State.PAUSE})
#: States in which a task works on nothing, so it holds no lock.
IDLE = frozenset({State.INIT, State.POSTPOSE, State.FINISH})
#: How long the callback's receiver may take to answer.
CALLBACK_TIMEOUT_SECONDS = 10.0


class ResourceBusy(Exception):
    """A resource the task needs is held by another task; the caller postpones."""

    def __init__(self, resource: str, holder: str | None) -> None:
        super().__init__(f"resource {resource} is held by {holder or 'another holder'}")
        self.resource = resource


def holder(task_id: int) -> str:
    return f"task:{task_id}"


def take_resources(
    conn: Connection, task_id: int, resources: Sequence[str], now: datetime
) -> dict[str, int]:
    """Lock every resource for the task (in name order, so two tasks never wait on each
    other), returning the fencing tokens; :class:`ResourceBusy` on the first one held.

    Raised inside the caller's transaction, so its rollback undoes the locks taken before.
    """
    tokens = {}
    for resource in sorted(set(resources)):
        name = RESOURCE_PREFIX + resource
        token = leases.claim(conn, name, holder(task_id), now, None)
        if token is None:
            raise ResourceBusy(resource, leases.holder_of(conn, name, now))
        tokens[resource] = token
    return tokens


#: Types with a concurrency limit somewhere in this process (the loops, or the API that
#: applies reports): only their tasks' ends wake the tasks waiting for a slot. Filled by
#: :func:`wake_on_end`; a type left in it needlessly costs one UPDATE per end, nothing else.
_LIMITED: set[str] = set()


def wake_on_end(task_types: Iterable[str]) -> None:
    """Have the end of a task of these types wake the tasks postponed for a slot of it."""
    _LIMITED.update(task_types)


def after_move(
    conn: Connection,
    task_id: int,
    move: Move,
    task: Any,
    *,
    resources: Sequence[str] | None,
    now: datetime,
) -> None:
    """Release and wake what ``move`` frees (see the module docstring).

    ``task`` is the task's guard row as it was before the move (its type, control task and
    kind); ``resources`` its stored resources: the prepare move stores every name it locks
    there, so a task with none holds no lock and costs no query here.
    """
    controls.after_move(conn, task_id, move, task, now)
    if move.to_state == State.FINISH:
        finished.note(conn, task_id, move.outcome.value if move.outcome else None)
    if move.to_state not in IDLE:
        return
    task_type = task.task_type
    if resources:
        released = leases.release(conn, holder(task_id))
        freed = {name.removeprefix(RESOURCE_PREFIX) for name in released}
        if freed:
            waiting = conn.execute(
                select(_c.id, _c.resources).where(_c.state == State.POSTPOSE, _c.id != task_id)
            ).all()
            _wake(conn, [row.id for row in waiting if freed & set(row.resources or ())], now)
    ended = move.to_state == State.FINISH or move.trigger == Trigger.RETRY
    if ended and task_type in _LIMITED:
        conn.execute(
            update(TASKS)
            .where(_c.state == State.POSTPOSE, _c.task_type == task_type, _c.ready_at > now)
            .values(ready_at=now)
        )


def _wake(conn: Connection, task_ids: list[int], now: datetime) -> None:
    if task_ids:
        conn.execute(update(TASKS).where(_c.id.in_(task_ids)).values(ready_at=now))


def deliver(http: urllib3.PoolManager, url: str, task: bytes) -> int:
    """POST the final task (JSON) to its ``callback_url``; the HTTP status, or raises
    :class:`urllib3.exceptions.HTTPError` when the receiver cannot be reached."""
    reply = http.request(
        "POST",
        url,
        body=task,
        headers={"Content-Type": "application/json"},
        timeout=urllib3.Timeout(total=CALLBACK_TIMEOUT_SECONDS),
        retries=False,
    )
    return int(reply.status)
