"""What makes a topology or a fan-out acceptable, checked before anything is stored.

Pure functions over the create bodies: a cycle, a missing key or a bad child is a 400 naming
the node (``nodes[2].params.seconds``), and a single create's own checks (type registered,
params valid) are passed in as ``check``, so every node is held to them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from taskscheduler.control.dag import check_dag
from taskworker.contract.api import CreateBody, CreateInfo, ProcessArg, Strategy, TopologyNode
from taskworker.errors import InvalidInput, NotFound

#: The task type of a topology's control task (and of a nested topology's node).
TOPOLOGY_TYPE = "topology"
#: The default when a fan-out names no strategy: the safest, one target at a time.
DEFAULT_STRATEGY = Strategy.SERIAL_BLOCKING
#: Most targets one fan-out may have (each is a task of its own).
MAX_TARGETS = 10_000
#: The check a single create makes (type registered, params valid), raising InvalidInput.
Check = Callable[[str, CreateBody], None]


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
