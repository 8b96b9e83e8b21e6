"""Topology shapes: refusing bad DAGs by name, and the orders a DAG is walked in."""

from __future__ import annotations

import pytest

from taskscheduler.control.dag import check_dag, descendants, ready, rollback_order
from taskworker.errors import InvalidInput

#: provision -> (database, user) -> schema -> backup: a diamond with a tail.
DIAMOND = [
    ("provision", []),
    ("database", ["provision"]),
    ("user", ["provision"]),
    ("schema", ["database", "user"]),
    ("backup", ["schema"]),
]


def test_a_diamond_is_released_level_by_level():
    graph = check_dag(DIAMOND)
    assert ready(graph, succeeded=[], started=[]) == ["provision"]
    assert sorted(ready(graph, succeeded=["provision"], started=["provision"])) == [
        "database",
        "user",
    ]
    assert (
        ready(graph, succeeded=["provision", "database"], started=["provision", "database", "user"])
        == []
    )
    assert ready(graph, {"provision", "database", "user"}, {"provision", "database", "user"}) == [
        "schema"
    ]


def test_a_failure_cancels_everything_downstream_only():
    graph = check_dag(DIAMOND)
    assert descendants(graph, ["database"]) == {"schema", "backup"}
    assert descendants(graph, ["backup"]) == set()


def test_rollback_undoes_children_before_parents():
    graph = check_dag(DIAMOND)
    order = rollback_order(graph, {"provision", "database", "user", "schema"})
    assert order.index("schema") < order.index("database") < order.index("provision")
    assert order.index("user") < order.index("provision")
    assert "backup" not in order


@pytest.mark.parametrize(
    ("nodes", "field", "says"),
    [
        ([("a", []), ("a", [])], "nodes[1].key", "duplicate key 'a'"),
        ([("a", ["ghost"])], "nodes[0].depends_on", "missing key 'ghost'"),
        ([("a", ["a"])], "nodes[0].depends_on", "depends on itself"),
        ([("a", ["c"]), ("b", ["a"]), ("c", ["b"])], "nodes", "cycle"),
    ],
)
def test_a_bad_dag_is_refused_naming_the_node(nodes, field, says):
    with pytest.raises(InvalidInput) as error:
        check_dag(nodes)
    assert error.value.field == field
    assert says in str(error.value)
