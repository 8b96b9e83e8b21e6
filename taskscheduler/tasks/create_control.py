"""Storing control tasks with their children: ``POST /v1/topology`` and fan-out creates.

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

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, insert

from taskscheduler.control.dag import check_dag
from taskscheduler.control.kinds import FANOUT, TOPOLOGY
from taskscheduler.db.models import TaskEdge, utcnow
from taskscheduler.tasks.transitions import apply_trigger, insert_task
from taskworker.contract.api import CreateBody, CreateInfo, ProcessArg, Strategy, TopologyNode
from taskworker.errors import InvalidInput, NotFound
from taskworker.states import Trigger

#: The task type of a topology's control task (and of a nested topology's node).
TOPOLOGY_TYPE = "topology"
EDGES = cast(Table, TaskEdge.__table__)
#: The default when a fan-out names no strategy: the safest, one target at a time.
DEFAULT_STRATEGY = Strategy.SERIAL_BLOCKING
#: Most targets one fan-out may have (each is a task of its own).
MAX_TARGETS = 10_000

#: How a create body becomes the columns of a task (``tasks_service``'s, passed in so that
#: topologies and single creates store tasks the same way).
Columns = Callable[[str, CreateBody], dict[str, Any]]
#: The check a single create makes (type registered, params valid), raising InvalidInput.
Check = Callable[[str, CreateBody], None]


def start_control(conn: Connection, task_id: int, *, actor: str, now: datetime) -> None:
    """Move a stored control task to ``running``; its next pass releases its children."""
    for trigger in (Trigger.CREATE, Trigger.PREPARE, Trigger.RUN):
        apply_trigger(conn, task_id, trigger, actor=actor, reason="control task", now=now)


def node_body(node: TopologyNode) -> CreateBody:
    return CreateBody(
        create_info=node.create_info or CreateInfo(),
        process_arg=node.process_arg or ProcessArg(),
        params=node.params,
    )


def check_nodes(nodes: Sequence[TopologyNode], check: Check, root: str = "nodes") -> None:
    """Everything that makes a topology acceptable, before anything is stored."""
    if not nodes:
        raise InvalidInput(root, "is empty; a topology needs at least one node")
    check_dag([(n.key, n.depends_on) for n in nodes], root=root)
    for index, node in enumerate(nodes):
        where = f"{root}[{index}]"
        if node.task_type == TOPOLOGY_TYPE:
            if node.params:
                raise InvalidInput(f"{where}.params", "a topology node takes nodes, not params")
            check_nodes(node.nodes or [], check, f"{where}.nodes")
            continue
        if node.nodes is not None:
            raise InvalidInput(f"{where}.nodes", f"only a {TOPOLOGY_TYPE!r} node has nodes")
        info = node.create_info or CreateInfo()
        for name in ("parent_task_id", "control_task_id", "idempotency_key"):
            if getattr(info, name) is not None:
                raise InvalidInput(f"{where}.create_info.{name}", "is set by the topology")
        try:
            check(node.task_type, node_body(node))
            check_fanout(info)
        except NotFound as exc:
            raise InvalidInput(f"{where}.task_type", str(exc)) from None
        except InvalidInput as exc:
            raise exc.within(where) from None


def check_fanout(info: CreateInfo) -> None:
    if info.targets is None:
        if info.strategy is not None or info.max_parallel is not None:
            field = "strategy" if info.strategy is not None else "max_parallel"
            raise InvalidInput(f"create_info.{field}", "applies only to a task with targets")
        return
    if not info.targets:
        raise InvalidInput("create_info.targets", "is empty; name at least one target")
    if len(info.targets) > MAX_TARGETS:
        raise InvalidInput("create_info.targets", f"has {len(info.targets)}; at most {MAX_TARGETS}")


def store_topology(
    conn: Connection,
    *,
    name: str | None,
    on_failure: str,
    nodes: Sequence[TopologyNode],
    info: CreateInfo,
    columns: Columns,
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
                columns=columns,
                actor=actor,
                link=child,
            )
        else:
            body = node_body(node)
            ids[node.key] = store_task(conn, node.task_type, body, columns, actor, link=child)
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
    columns: Columns,
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
