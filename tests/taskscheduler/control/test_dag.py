"""Topology shapes: refusing bad DAGs by name, and what a failure stops."""

from __future__ import annotations

import pytest

from taskscheduler.control.dag import check_dag, descendants
from taskworker.errors import InvalidInput

#: provision -> (database, user) -> schema -> backup: a diamond with a tail.
DIAMOND = [
    ("provision", []),
    ("database", ["provision"]),
    ("user", ["provision"]),
    ("schema", ["database", "user"]),
    ("backup", ["schema"]),
]


def test_a_failure_cancels_everything_downstream_only():
    graph = check_dag(DIAMOND)
    assert descendants(graph, ["database"]) == {"schema", "backup"}
    assert descendants(graph, ["backup"]) == set()


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
