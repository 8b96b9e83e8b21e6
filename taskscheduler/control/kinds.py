"""Control tasks: the task that stands for a whole topology or fan-out (DESIGN §2).

A control task runs on no worker. Its children are ordinary tasks that point at it through
``control_task_id``; the :class:`~taskscheduler.loops.controls.ControlLoop` releases them,
cancels them, rolls them back and moves the control task so that its state sums theirs up.

The loop never polls every control task. A control task needs a look only when something
about it changed, and it is told so in the transaction of the change, by :func:`touch`
setting its ``ready_at`` to now (a control task is never queued, so the column is free to
mean "look at me since then"):

* a child ``succeed``\\ ed or ended (``finish``): a parent of others, or the last one;
* the control task itself moved: created, paused, continued, cancelled, rolled back by an
  operator, or released by its own control task when topologies nest.

The touch is an ``UPDATE`` of the control task's row in the child's transaction, so two
children of one topology that end at once are serialised on that row; the loop reads the
children after the touch it clears and clears it only if nobody touched it since
(``WHERE ready_at = <what it read>``), so an end it did not see always leads to another pass.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, update

from taskscheduler.db.models import Task
from taskworker.states import Move, State

TASKS = cast(Table, Task.__table__)
#: ``tasks.kind`` of the control tasks (everything else is dispatched to workers).
TOPOLOGY = "topology"
FANOUT = "fanout"
CONTROL_KINDS = (TOPOLOGY, FANOUT)
#: A child's move after which its control task has something to decide.
_DECISIVE = frozenset({State.SUCCESS, State.FINISH})


def touch(conn: Connection, control_task_id: int, now: datetime) -> None:
    """Ask for a pass over ``control_task_id`` (in the caller's transaction)."""
    conn.execute(update(TASKS).where(TASKS.c.id == control_task_id).values(ready_at=now))


def after_move(conn: Connection, task_id: int, move: Move, task: Any, now: datetime) -> None:
    """Touch the control task a move concerns: the task's own control task when the move
    decides something there, and the task itself when it is a control task."""
    if task.control_task_id is not None and move.to_state in _DECISIVE:
        touch(conn, task.control_task_id, now)
    if task.kind in CONTROL_KINDS:
        touch(conn, task_id, now)
