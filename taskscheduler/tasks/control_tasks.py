"""The rows of control tasks: a topology or fan-out stored with its children, and started.

A topology is stored whole in one transaction — its control task, every child (nested
topologies and fan-outs included) and the DAG's edges — or, when any node is bad, not at
all, with the error naming the node (``nodes[2].params.seconds``). Children are stored
with ``ready_at`` null: nothing dispatches them until their control task's pass releases
them (:mod:`taskscheduler.control.plan`), so a crash right after the commit loses nothing
and starts nothing early.

A fan-out (a create with ``create_info.targets``) is the same arrangement with one child
per target, each carrying its ``target``; its strategy decides the releases.

A control task runs on the scheduler: :func:`start_control` moves it ``init → create →
prepare → running`` at once (each move recorded), and its children do the work.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, update

from taskscheduler.control.checks import DEFAULT_STRATEGY, TOPOLOGY_TYPE, node_body
from taskscheduler.control.kinds import FANOUT, TOPOLOGY
from taskscheduler.db.models import utcnow
from taskscheduler.db.tables import EDGES, TASKS
from taskscheduler.tasks.store import columns, insert_task
from taskscheduler.tasks.transitions import apply_trigger
from taskscheduler.tasks.write import write_task
from taskworker.contract.api import CreateBody, CreateInfo, TopologyNode
from taskworker.states import State, Trigger

_c = TASKS.c


def start_control(conn: Connection, task_id: int, *, actor: str, now: datetime) -> None:
    """Move a stored control task to ``running``; its next pass releases its children."""
    for trigger in (Trigger.CREATE, Trigger.PREPARE, Trigger.RUN):
        apply_trigger(conn, task_id, trigger, actor=actor, reason="control task", now=now)


def store_topology(
    conn: Connection,
    *,
    name: str | None,
    on_failure: str,
    nodes: Sequence[TopologyNode],
    info: CreateInfo,
    actor: str,
    link: dict[str, Any] | None = None,
) -> tuple[int, dict[str, int]]:
    """Insert a checked topology (control task, children, edges); the control task's id and
    its children's ids by key. ``link`` ties a nested topology to its outer control task."""
    control_id = insert_task(
        conn,
        {
            "task_type": TOPOLOGY_TYPE,
            "task_name": name,
            "important_level": info.important_level,
            "callback_url": info.callback_url,
            "idempotency_key": info.idempotency_key,
            "kind": TOPOLOGY,
            "on_failure": on_failure,
            "deadline_second": None,
            "params": {},
            "ready_at": None,
            **(link or {}),
        },
        actor=actor,
    )
    ids: dict[str, int] = {}
    for node in nodes:
        child = {
            "control_task_id": control_id,
            "parent_task_id": control_id,
            "node_key": node.key,
            "ready_at": None,
        }
        if node.task_type == TOPOLOGY_TYPE:
            ids[node.key], _ = store_topology(
                conn,
                name=node.key,
                on_failure=node.on_failure,
                nodes=node.nodes or [],
                info=node.create_info or CreateInfo(),
                actor=actor,
                link=child,
            )
        else:
            body = node_body(node)
            ids[node.key] = store_task(conn, node.task_type, body, actor, link=child)
    edges = [
        {"task_id": ids[node.key], "depends_on_id": ids[parent]}
        for node in nodes
        for parent in node.depends_on
    ]
    if edges:
        conn.execute(insert(EDGES), edges)
    return control_id, ids


def store_task(
    conn: Connection,
    task_type: str,
    body: CreateBody,
    actor: str,
    *,
    link: dict[str, Any] | None = None,
) -> int:
    """Insert one checked task, or a fan-out (its control task and one child per target)."""
    values = {**columns(task_type, body), **(link or {})}
    targets = body.create_info.targets
    if targets is None:
        return insert_task(conn, values, actor=actor)
    values.update(
        kind=FANOUT,
        strategy=(body.create_info.strategy or DEFAULT_STRATEGY).value,
        ready_at=None,
    )
    control_id = insert_task(conn, values, actor=actor)
    child = {
        **values,
        "kind": "simple",
        "targets": None,
        "strategy": None,
        "max_parallel": None,
        "idempotency_key": None,
        "callback_url": None,
        "control_task_id": control_id,
        "parent_task_id": control_id,
    }
    now = utcnow()
    for index, target in enumerate(targets):
        insert_task(conn, {**child, "target": target, "node_key": str(index)}, actor=actor, now=now)
    return control_id


def release_children(conn: Connection, child_ids: Sequence[int], now: datetime) -> int:
    """Put waiting children in line (``ready_at`` now: the Dispatcher and the Scheduler take
    them like any task); one already released, or moved on, is left alone. How many were."""
    if not child_ids:
        return 0
    released = conn.execute(
        update(TASKS)
        .where(_c.id.in_(child_ids), _c.state == State.INIT, _c.ready_at.is_(None))
        .values(ready_at=now)
    )
    return int(released.rowcount)


def write_progress(conn: Connection, control_id: int, percent: float, message: str) -> None:
    """The control task's progress, summed up from its children's."""
    write_task(
        conn, [control_id], {"progress_percent": percent, "progress_message": message[:1024]}
    )


def clear_touch(
    conn: Connection, control_id: int, *, seen: datetime | None, again: datetime | None
) -> None:
    """End a pass over the control task: its touch cleared (or set to ``again``, when the
    pass left work to retry), but only if nobody touched it since the pass read ``seen``,
    so an end the pass did not see always brings another."""
    conn.execute(
        update(TASKS).where(_c.id == control_id, _c.ready_at == seen).values(ready_at=again)
    )
