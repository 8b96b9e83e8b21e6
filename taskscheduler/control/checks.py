"""What makes a topology or a fan-out acceptable, checked before anything is stored.

Pure functions over the create bodies: a cycle, a missing key or a bad child is a 400 naming
the node (``nodes[2].params.seconds``), and a single create's own checks (type registered,
params valid) are passed in as ``check``, so every node is held to them.

Size comes first: every node becomes a task row, so a topology may have at most
``max_nodes`` (``TASK_TOPOLOGY_MAX_NODES``) of them in all, the nodes of nested topologies
and the targets of fan-outs included, and one create at most as many targets. The count is
a cheap walk over the decoded body, made before any other check, so an oversized request
costs one pass over what was already parsed and nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from taskscheduler.control.dag import check_dag
from taskworker.contract.api import CreateBody, CreateInfo, ProcessArg, Strategy, TopologyNode
from taskworker.errors import InvalidInput, NotFound

#: The task type of a topology's control task (and of a nested topology's node).
TOPOLOGY_TYPE = "topology"
#: The default when a fan-out names no strategy: the safest, one target at a time.
DEFAULT_STRATEGY = Strategy.SERIAL_BLOCKING
#: Most tasks one topology or fan-out may make, unless a node's settings say otherwise
#: (``TASK_TOPOLOGY_MAX_NODES``).
DEFAULT_MAX_NODES = 1000
#: The check a single create makes (type registered, params valid), raising InvalidInput.
Check = Callable[[str, CreateBody], None]


def node_body(node: TopologyNode) -> CreateBody:
    return CreateBody(
        create_info=node.create_info or CreateInfo(),
        process_arg=node.process_arg or ProcessArg(),
        params=node.params,
    )


def count_nodes(nodes: Iterable[TopologyNode]) -> int:
    """The tasks a topology makes: each node, the nodes of nested topologies and each fan-out
    target. Walked with a stack, not recursion, so no nesting depth can exhaust it."""
    total = 0
    pending = [nodes]
    while pending:
        for node in pending.pop():
            total += 1
            if node.nodes:
                pending.append(node.nodes)
            targets = node.create_info.targets if node.create_info else None
            total += len(targets or ())
    return total


def check_nodes(
    nodes: Sequence[TopologyNode],
    check: Check,
    root: str = "nodes",
    *,
    max_nodes: int = DEFAULT_MAX_NODES,
) -> None:
    """Everything that makes a topology acceptable, before anything is stored."""
    if (found := count_nodes(nodes)) > max_nodes:
        raise InvalidInput(
            root,
            f"makes {found} tasks (nested nodes and fan-out targets counted); "
            f"at most {max_nodes} (TASK_TOPOLOGY_MAX_NODES)",
        )
    _check_level(nodes, check, root, max_nodes)


def _check_level(nodes: Sequence[TopologyNode], check: Check, root: str, max_nodes: int) -> None:
    """One level of a topology, and the levels nested in it."""
    if not nodes:
        raise InvalidInput(root, "is empty; a topology needs at least one node")
    check_dag([(n.key, n.depends_on) for n in nodes], root=root)
    for index, node in enumerate(nodes):
        where = f"{root}[{index}]"
        if node.task_type == TOPOLOGY_TYPE:
            if node.params:
                raise InvalidInput(f"{where}.params", "a topology node takes nodes, not params")
            _check_level(node.nodes or [], check, f"{where}.nodes", max_nodes)
            continue
        if node.nodes is not None:
            raise InvalidInput(f"{where}.nodes", f"only a {TOPOLOGY_TYPE!r} node has nodes")
        info = node.create_info or CreateInfo()
        for name in ("parent_task_id", "control_task_id", "idempotency_key"):
            if getattr(info, name) is not None:
                raise InvalidInput(f"{where}.create_info.{name}", "is set by the topology")
        try:
            check(node.task_type, node_body(node))
            check_fanout(info, max_nodes)
        except NotFound as exc:
            raise InvalidInput(f"{where}.task_type", str(exc)) from None
        except InvalidInput as exc:
            raise exc.within(where) from None


def check_fanout(info: CreateInfo, max_targets: int = DEFAULT_MAX_NODES) -> None:
    """A fan-out's options apply only with targets, and its targets are bounded."""
    if info.targets is None:
        if info.strategy is not None or info.max_parallel is not None:
            field = "strategy" if info.strategy is not None else "max_parallel"
            raise InvalidInput(f"create_info.{field}", "applies only to a task with targets")
        return
    if not info.targets:
        raise InvalidInput("create_info.targets", "is empty; name at least one target")
    if len(info.targets) > max_targets:
        raise InvalidInput(
            "create_info.targets",
            f"has {len(info.targets)}; at most {max_targets} (TASK_TOPOLOGY_MAX_NODES)",
        )
