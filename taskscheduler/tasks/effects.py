"""What a move does beyond its own row, in the transaction that writes it.

:func:`after_move` is called by the writer (:mod:`~taskscheduler.tasks.transitions`,
:mod:`~taskscheduler.tasks.bulk`) for every move, so every path that moves a task — a
worker's report, an outside ``notify``, the Checker, an operator's cancel, a control task's
pass — has the same effects, and a crash can never leave one without the other:

* a task of a topology or fan-out has its control task touched when it succeeds or ends,
  and a control task that moves is touched itself (:func:`touch_control`);
* a move to ``finish`` is noted for :mod:`~taskscheduler.tasks.waiters`, which tells the
  requests waiting for the task once the transaction has committed;
* a task stops holding its resource locks when it stops working on them (``finish``, a
  ``retry`` back to ``init``, a ``postpone``): they are released and their waiters woken
  (:mod:`~taskscheduler.tasks.resources`);
* an attempt that ended (``finish``, or ``retry`` back to ``init``) frees a slot of its
  type, so the tasks postponed by the type's concurrency limit are woken, for the types
  given a limit on this engine (:func:`wake_on_end`).

Touching a control task sets its ``ready_at`` to now (a control task is never queued, so
the column is free to mean "look at me since then"). The touch is an ``UPDATE`` of the
control task's row in the child's transaction, so two children of one topology that end at
once are serialised on that row; the ControlLoop reads the children after the touch it
clears and clears it only if nobody touched it since, so an end it did not see always leads
to another pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine, update

from taskscheduler.control.kinds import CONTROL_KINDS
from taskscheduler.db.tables import TASKS
from taskscheduler.tasks import waiters
from taskscheduler.tasks.guard import GuardRow
from taskscheduler.tasks.resources import release_resources
from taskworker.states import DECISIVE, IDLE, Move, State, Trigger

_c = TASKS.c
#: The engine's execution option naming the task types with a concurrency limit.
LIMITED_TYPES = "taskscheduler_limited_types"


def wake_on_end(engine: Engine, task_types: Iterable[str]) -> None:
    """Have the end of a task of these types, written through ``engine``, wake the tasks
    postponed for a slot of its type. Kept on the engine (an execution option every
    connection carries), so each node's processes configure their own and nothing is
    global; a type named needlessly costs one UPDATE per end, nothing else."""
    limited = set(engine.get_execution_options().get(LIMITED_TYPES, ()))
    engine.update_execution_options(**{LIMITED_TYPES: frozenset(limited | set(task_types))})


def touch_control(conn: Connection, control_task_id: int, now: datetime) -> None:
    """Ask for a pass over ``control_task_id`` (in the caller's transaction)."""
    conn.execute(update(TASKS).where(_c.id == control_task_id).values(ready_at=now))


def after_move(
    conn: Connection,
    task_id: int,
    move: Move,
    task: GuardRow,
    *,
    resources: Sequence[str] | None,
    now: datetime,
) -> None:
    """Touch, announce, release and wake what ``move`` concerns (see the module docstring).

    ``task`` is the task's guard columns as they were before the move (its type, control
    task and kind); ``resources`` its stored resources: the prepare move stores every name
    it locks there, so a task with none holds no lock and costs no query here.
    """
    if task.control_task_id is not None and move.to_state in DECISIVE:
        touch_control(conn, task.control_task_id, now)
    if task.kind in CONTROL_KINDS:
        touch_control(conn, task_id, now)
    if move.to_state == State.FINISH:
        waiters.note(conn, task_id, move.outcome.value if move.outcome else None)
    if move.to_state not in IDLE:
        return
    if resources:
        release_resources(conn, task_id, now)
    ended = move.to_state == State.FINISH or move.trigger == Trigger.RETRY
    if ended and task.task_type in conn.get_execution_options().get(LIMITED_TYPES, ()):
        conn.execute(
            update(TASKS)
            .where(_c.state == State.POSTPOSE, _c.task_type == task.task_type, _c.ready_at > now)
            .values(ready_at=now)
        )
