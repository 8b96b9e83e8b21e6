"""``PUT /v1/task/{type}?task_id=N&action=revert``: undoing a task that finished succeeded.

A finished task cannot move any more (``finish`` is terminal, and its ``rollback`` is 409),
yet what it did may need undoing long after: a schema change, a user. A revert is a new task
of the same type, linked by ``reverts_task_id``, whose work on its worker is the plugin's
``rollback`` of task N, with N's params, result and id
(:class:`~taskworker.contract.worker.Reverted` in its dispatch). It runs like any task:
queued, locked on the same resources, retried, paused or cancelled, with records of its own.

It is refused (409, nothing stored) unless task N finished ``succeeded``, its type's undo is
``rollback`` (a plugin with ``nothing`` to undo or whose undo is ``impossible`` has nothing
to run), N is no topology or fan-out (their children are reverted one by one) and no revert
itself, and no other revert of N is unfinished or succeeded. The role needed is the
operator's, and the admin's for a privileged type, as for any new work of the type.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Row, select

from taskscheduler.control.kinds import CONTROL_KINDS
from taskscheduler.db.engine import reading
from taskscheduler.db.tables import TASKS
from taskscheduler.tasks.create import check_privilege
from taskscheduler.tasks.guard import ROW_BY_ID
from taskscheduler.tasks.store import columns, insert_task
from taskscheduler.workers.registry import Registry
from taskworker.contract.api import CreateBody, CreateInfo, ProcessArg
from taskworker.contract.worker import Reverted, Undo
from taskworker.errors import Conflict, NotFound
from taskworker.states import Outcome, State

_c = TASKS.c


def revert(
    engine: Engine,
    registry: Registry,
    row: Row[Any],
    *,
    actor: str,
    role: str | None,
    reason: str | None,
) -> Row[Any]:
    """Store the revert of the task ``row`` shows, in ``init`` with its ``submit`` record
    (whose reason names the task reverted); the new task's row. See the module docstring
    for what is refused."""
    _check_revertible(row)
    try:
        spec = registry.type_spec(row.task_type)
    except NotFound:
        why = f"no registered worker serves {row.task_type} now to revert task {row.id}"
        raise Conflict(why) from None
    check_privilege(row.task_type, spec, role)
    undo = registry.undo(row.task_type)
    if undo is Undo.NOTHING:
        raise Conflict(f"the {row.task_type} plugin has nothing to undo: task {row.id} stays")
    if undo is not Undo.ROLLBACK:
        raise Conflict(f"the {row.task_type} plugin cannot undo a task (its undo is {undo})")
    body = CreateBody(
        create_info=CreateInfo(
            task_name=row.task_name,
            important_level=row.important_level,
            resources=row.resources or None,
        ),
        # one try: undoing twice what half-failed is for an operator to decide
        process_arg=ProcessArg(
            deadline_second=row.deadline_second, lock_timeout=row.lock_timeout, max_retry=0
        ),
        params=row.params or {},
    )
    values = {**columns(row.task_type, body), "target": row.target, "reverts_task_id": row.id}
    note = f"reverts task {row.id}"
    with engine.begin() as conn:
        # the reverted task's row is locked, so two reverts of it are serialised here
        conn.execute(select(_c.id).where(_c.id == row.id).with_for_update())
        for other in conn.execute(
            select(_c.id, _c.state, _c.outcome).where(_c.reverts_task_id == row.id)
        ):
            if other.state != State.FINISH or other.outcome == Outcome.SUCCEEDED:
                status = other.outcome or other.state
                raise Conflict(f"task {row.id} already has a revert: task {other.id} ({status})")
        task_id = insert_task(
            conn, values, actor=actor, reason=f"{note}: {reason}" if reason else note
        )
        return conn.execute(ROW_BY_ID, {"task_id": task_id}).one()


def _check_revertible(row: Row[Any]) -> None:
    if row.reverts_task_id is not None:
        raise Conflict(
            f"task {row.id} is the revert of task {row.reverts_task_id}: a revert is not "
            "reverted (submit the work again instead)"
        )
    if row.kind in CONTROL_KINDS:
        raise Conflict(f"task {row.id} is a {row.kind}: revert its children, one by one, instead")
    if row.state != State.FINISH or row.outcome != Outcome.SUCCEEDED:
        status = f"{row.state} ({row.outcome})" if row.outcome else row.state
        raise Conflict(
            f"task {row.id} is {status}: only a task that finished succeeded can be reverted"
        )


def reverted(engine: Engine, reverts_task_id: int | None) -> Reverted | None:
    """What the worker of a revert is told of the task it reverts (None for any other task):
    its id and result. Read when the revert starts: reverts are rare, and a result may be
    large, so no task's queued copy carries one."""
    if reverts_task_id is None:
        return None
    with reading(engine) as conn:
        query = select(_c.result).where(_c.id == reverts_task_id)
        return Reverted(task_id=reverts_task_id, result=conn.execute(query).scalar())
