"""Resource locks of tasks: leases ``resource:<name>`` held from ``prepare`` to the end.

A plugin declares the resources it works on (``mysql:host:3306/shop.orders``); at
``prepare`` the Scheduler loop takes a lease on each in the transaction that records the
move, so the state is validated with the locks held and a crash never leaves a lock without
its task's state. The move that stops the task working on them releases them in its own
transaction (:func:`taskscheduler.tasks.effects.after_move`) and wakes the postponed tasks
waiting on those names, instead of them polling the lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, select, update

from taskscheduler.db.tables import TASKS
from taskscheduler.locks import leases
from taskworker.states import State

_c = TASKS.c
RESOURCE_PREFIX = "resource:"


class ResourceBusy(Exception):
    """A resource the task needs is held by another task; the caller postpones."""

    def __init__(self, resource: str, holder: str | None) -> None:
        super().__init__(f"resource {resource} is held by {holder or 'another holder'}")
        self.resource = resource


def holder(task_id: int) -> str:
    """The lease holder's name of a task."""
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


def release_resources(conn: Connection, task_id: int, now: datetime) -> None:
    """Release every lock the task holds and wake the postponed tasks waiting on them (their
    ``ready_at`` set to now, so the Checker requeues them on its next pass)."""
    released = leases.release(conn, holder(task_id))
    freed = {name.removeprefix(RESOURCE_PREFIX) for name in released}
    if not freed:
        return
    waiting = conn.execute(
        select(_c.id, _c.resources).where(_c.state == State.POSTPOSE, _c.id != task_id)
    ).all()
    woken = [row.id for row in waiting if freed & set(row.resources or ())]
    if woken:
        conn.execute(update(TASKS).where(_c.id.in_(woken)).values(ready_at=now))
