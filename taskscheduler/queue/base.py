"""The Queue (DESIGN §1): the line of tasks waiting to be dispatched, behind one interface.

The database is the source of truth; a queue only says *which* task a node should try
next. Whoever takes an item still starts the task with the version-checked ``create``
(:mod:`taskscheduler.loops.scheduler`), so an item handed out twice, a stale item (the task
moved on since it was queued) or a duplicate item can never start a task twice: the second
``create`` finds the version changed and the item is simply acknowledged.

Backends (:func:`taskscheduler.queue.build_redis` gives the Redis one when the settings ask
for it):

- :class:`~taskscheduler.queue.database.DatabaseQueue`, the embedded default: the tasks
  table is the queue; nothing to feed, nothing to acknowledge.
- :class:`~taskscheduler.queue.redis.RedisQueue`: a reliable Redis queue fed by the
  Dispatcher loop (:mod:`taskscheduler.loops.dispatcher`); it hands each item to one node
  and takes it back if that node dies before acknowledging it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from taskscheduler.control.kinds import CONTROL_KINDS
from taskworker.states import State


def in_line(row: Any, now: datetime) -> bool:
    """Whether a task belongs in the line now: in ``init`` with its ``ready_at`` come, and not
    a control task (those are moved by the ControlLoop, never started on a worker). The
    queues hand out only such tasks; whoever takes an item checks the row again, since it
    may have moved on meanwhile."""
    return (
        row.state == State.INIT
        and row.ready_at is not None
        and row.ready_at <= now
        and row.kind not in CONTROL_KINDS
    )


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One task handed to this node; ``receipt`` is what :meth:`Queue.ack` needs back;
    ``start`` the copy of its columns queued with it, if any
    (:mod:`taskscheduler.tasks.start_copy`)."""

    task_id: int
    receipt: object = None
    start: str | None = None


class Ready(NamedTuple):
    """A task to queue: its id, the version it is queued at and its priority, and the copy
    of its columns when the one queuing it has the whole row (the API, as it stores it)."""

    task_id: int
    version: int
    important_level: int
    start: bytes | None = None


class Queue(Protocol):
    #: ``True`` when :meth:`take` never hands one item to two consumers at once (until the
    #: redelivery timeout); ``False`` when the claim alone (the version-checked ``create``)
    #: picks the one consumer that starts the task.
    exclusive: bool

    def take(self, n: int, now: datetime) -> list[QueueItem]:
        """Hand out up to ``n`` items for this node: higher ``important_level`` first, and
        within one level first in, first out (the database queue: in the order the tasks
        were submitted; the Redis queue: in the order they were queued, so a task back from
        ``postpose`` lines up behind those already waiting).

        Only tasks in ``init`` whose ``ready_at`` has come are handed out (a task with no
        ``ready_at``, such as a topology child whose parents have not succeeded, never is),
        though an item may be stale by the time it is read: the caller checks the row. An
        item stays taken until :meth:`ack`; an item a node took and never acknowledged (it
        died) is handed out again once the redelivery timeout has passed.
        """

    def ack(self, items: Sequence[QueueItem]) -> None:
        """Forget ``items``: call once the task's ``create`` committed, or once the task
        turned out not to be dispatchable (no longer ``init``, not yet ready). Acknowledging
        an item twice, or one the queue lost, is harmless."""
