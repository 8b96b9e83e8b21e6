"""The shape of a topology (a DAG of tasks), as pure functions over node keys.

- :func:`check_dag` refuses duplicate keys, edges to missing keys and cycles, naming the
  node, so the API can refuse a bad DAG before anything is stored;
- :func:`descendants` gives what can never start once a node failed.

Which children to release and in what order a saga undoes them is decided from the stored
children by :mod:`taskscheduler.control.plan`.
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
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise InvalidInput(f"{root}", f"the dependencies form a cycle: {cycle}") from None
    return graph


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
