"""The shape of a topology (a DAG of tasks): validation and the orders it is walked in.

Pure functions over node keys, so the API can refuse a bad DAG before anything is stored
and the loops can ask what to release or roll back without re-deriving the graph:

- :func:`check_dag` refuses duplicate keys, edges to missing keys and cycles, naming the node;
- :func:`topological_order` gives an order in which every node follows its parents;
- :func:`ready` gives the nodes whose parents all succeeded (the ones to dispatch);
- :func:`descendants` gives what must be cancelled when a node fails;
- :func:`rollback_order` gives the succeeded nodes in reverse dependency order (the saga).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from graphlib import CycleError, TopologicalSorter
from typing import TypeVar

from taskworker.errors import InvalidInput

Graph = Mapping[str, Collection[str]]  # key -> keys it depends on
K = TypeVar("K")


def check_dag(nodes: Sequence[tuple[str, Collection[str]]], *, root: str = "nodes") -> Graph:
    """Validate ``(key, depends_on)`` pairs; return them as a graph or raise naming the node."""
    graph: dict[str, Collection[str]] = {}
    for index, (key, depends_on) in enumerate(nodes):
        if key in graph:
            raise InvalidInput(f"{root}[{index}].key", f"duplicate key {key!r}")
        graph[key] = depends_on
    for index, (key, depends_on) in enumerate(nodes):
        for parent in depends_on:
            if parent not in graph:
                raise InvalidInput(
                    f"{root}[{index}].depends_on", f"{key!r} depends on missing key {parent!r}"
                )
            if parent == key:
                raise InvalidInput(f"{root}[{index}].depends_on", f"{key!r} depends on itself")
    try:
        topological_order(graph)
    except CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise InvalidInput(f"{root}", f"the dependencies form a cycle: {cycle}") from None
    return graph


def topological_order(graph: Graph) -> list[str]:
    return list(TopologicalSorter(graph).static_order())


def ready(graph: Graph, succeeded: Collection[str], started: Collection[str]) -> list[str]:
    """Nodes not yet started whose parents have all succeeded."""
    return [
        key
        for key in topological_order(graph)
        if key not in started and all(parent in succeeded for parent in graph[key])
    ]


def descendants(graph: Mapping[K, Collection[K]], failed: Iterable[K]) -> set[K]:
    """Every node downstream of ``failed`` (which can therefore never start)."""
    children: dict[K, list[K]] = {key: [] for key in graph}
    for key, parents in graph.items():
        for parent in parents:
            children[parent].append(key)
    found: set[K] = set()
    stack = list(failed)
    while stack:
        for child in children[stack.pop()]:
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def rollback_order(graph: Graph, succeeded: Collection[str]) -> list[str]:
    """The succeeded nodes, children before their parents: the order a saga undoes them."""
    return [key for key in reversed(topological_order(graph)) if key in succeeded]
