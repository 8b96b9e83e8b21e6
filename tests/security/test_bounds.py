"""Every bound of the contract, replayed against a real node: 400 naming the field (404 for
an id past 2^63 - 1), never a 500, and nothing stored.

One ``taskscheduler standalone`` (API under gunicorn, the loops, a worker with the shipped
plugins) serves the module, once on SQLite and once on MariaDB, with
``TASK_TOPOLOGY_MAX_NODES`` set low so that the limit and the largest accepted topology are
both cheap to show. Each attack is sent as any client would send it; after it, the tasks and
triggers are what they were.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from taskscheduler.db import migrate
from taskscheduler.db.engine import make_engine
from tests import services
from tests.processes import PYTHON, free_port, running, wait_until

#: The node's TASK_TOPOLOGY_MAX_NODES.
MAX_NODES = 40
DAY = 24 * 3600
MAX_SECONDS = 366 * DAY
HUGE_ID = 99999999999999999999999
NOOP = {"create_info": {"task_type": "noop"}}
PAST_BIGINT = 2**63


class Node:
    """The running standalone, spoken to as any HTTP client would."""

    def __init__(self, base: str, engine: Engine) -> None:
        self.base = base
        self.engine = engine

    def request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return httpx.request(method, f"{self.base}{path}", json=body, timeout=30)

    def stored(self) -> tuple[set[int], set[str]]:
        """Every task id and every trigger name the node holds."""
        with self.engine.connect() as conn:
            tasks = {row[0] for row in conn.execute(text("SELECT id FROM tasks"))}
            triggers = {row[0] for row in conn.execute(text("SELECT name FROM triggers"))}
        return tasks, triggers

    def store_deadline(self, task_id: int, seconds: float) -> None:
        """Write a deadline as a row stored before the bound would hold it."""
        with self.engine.begin() as conn:
            conn.execute(
                text("UPDATE tasks SET deadline_second = :s WHERE id = :id"),
                {"s": seconds, "id": task_id},
            )

    def refused(self, method: str, path: str, body: Any = None) -> tuple[int, str | None]:
        """The status and the field named of a request that must change nothing."""
        before = self.stored()
        answer = self.request(method, path, body)
        assert self.stored() == before, f"{method} {path} stored something"
        assert answer.headers["content-type"].startswith("application/json"), answer.text
        return answer.status_code, answer.json().get("field")

    def created(self, path: str, body: Any) -> dict[str, Any]:
        answer = self.request("POST", path, body)
        assert answer.status_code == 201, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def view(self, task: dict[str, Any]) -> dict[str, Any]:
        answer = self.request("GET", f"/v1/task/{task['task_type']}?task_id={task['task_id']}")
        found: dict[str, Any] = answer.json()
        return found


@pytest.fixture(scope="module", params=["sqlite", "mysql"])
def node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Node]:
    folder: Path = tmp_path_factory.mktemp("bounds")
    if request.param == "sqlite":
        db_url = f"sqlite:///{folder / 'tasks.db'}"
    else:
        db_url = services.create_mysql_database()
        request.addfinalizer(lambda: services.drop_mysql_database(db_url))
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    request.addfinalizer(engine.dispose)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "TASK_DB_URL": db_url,
        "TASK_TOPOLOGY_MAX_NODES": str(MAX_NODES),
        # a quiet task is failed late: only deadlines end the tasks of these tests
        "TASK_HEARTBEAT_TIMEOUT_SECONDS": "120",
    }
    argv = [PYTHON, "-m", "taskscheduler", "standalone", "--bind", f"127.0.0.1:{port}"]
    with running(argv, url=base, log_path=folder / "node.log", cwd=folder, env=env) as proc:
        found = Node(base, engine)
        wait_until(
            lambda: (
                {"noop", "sleep"}
                <= {t["task_type"] for t in found.request("GET", "/v1/types").json()}
            ),
            30,
            what="the built-in worker registered",
        )
        yield found
        assert "Traceback" not in proc.log(), proc.log()


def noop(**process_arg: Any) -> dict[str, Any]:
    return {"process_arg": process_arg}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("deadline_second", MAX_SECONDS + 1),
        ("deadline_second", 1e12),
        ("deadline_second", 1e308),
        ("deadline_second", 0),
        ("deadline_second", 1e-50),  # MariaDB's FLOAT would store it as 0
        ("lock_timeout", MAX_SECONDS + 1),
        ("lock_timeout", 1e308),
        ("lock_timeout", -1),
    ],
)
def test_a_duration_past_366_days_is_refused_naming_it_wherever_it_is_given(
    node: Node, field: str, value: float
) -> None:
    # Given a duration no task may have
    arg = {field: value}
    # When it is given to a create, a batch item, a topology node and a trigger template
    ways = {
        f"process_arg.{field}": ("/v1/task/noop", noop(**arg)),
        f"tasks[0].process_arg.{field}": (
            "/v1/tasks",
            {"tasks": [{"create_info": {"task_type": "noop"}, "process_arg": arg}]},
        ),
        f"nodes[0].process_arg.{field}": (
            "/v1/topology",
            {"name": "t", "nodes": [{"key": "a", "task_type": "noop", "process_arg": arg}]},
        ),
        f"template.process_arg.{field}": (
            "/v1/triggers",
            {"name": "late", "interval_second": 60, "template": {**NOOP, "process_arg": arg}},
        ),
    }
    # Then each is a 400 naming the field, and nothing is stored
    for named, (path, body) in ways.items():
        assert node.refused("POST", path, body) == (400, named)


def test_the_longest_durations_are_accepted(node: Node) -> None:
    # Given a task with the longest deadline and lock timeout there are
    created = node.created(
        "/v1/task/noop", noop(deadline_second=MAX_SECONDS, lock_timeout=MAX_SECONDS)
    )
    # Then it was stored with them
    view = node.view(created)
    assert (view["deadline_second"], view["lock_timeout"]) == (MAX_SECONDS, MAX_SECONDS)


@pytest.mark.parametrize("seconds", [0.5, 0, -60, MAX_SECONDS + 1, 1e12, 1e308])
def test_an_interval_outside_1_s_to_366_days_is_refused_and_no_trigger_stored(
    node: Node, seconds: float
) -> None:
    body = {
        "name": f"every-{seconds}",
        "interval_second": seconds,
        "template": {"create_info": {"task_type": "noop"}},
    }
    assert node.refused("POST", "/v1/triggers", body) == (400, "interval_second")


def test_the_interval_bounds_themselves_are_accepted(node: Node) -> None:
    for seconds in (1, MAX_SECONDS):
        body = {
            "name": f"edge-{seconds}",
            "interval_second": seconds,
            "template": {"create_info": {"task_type": "noop"}},
        }
        trigger = node.created("/v1/triggers", body)
        assert trigger["interval_second"] == seconds
        assert node.request("DELETE", f"/v1/triggers/{trigger['trigger_id']}").status_code == 204


@pytest.mark.parametrize(
    ("field", "value"),
    [
        *(("important_level", level) for level in (10, -1, 1.5, "5", True, 1e308)),
        ("parent_task_id", PAST_BIGINT),
        ("max_parallel", 2**31),
        ("http_url", "http://"),  # no host to call
        ("callback_url", "http://[::1"),  # no URL parser takes it
        ("resources", ["r" * 247]),  # locked as "resource:<name>" in 255 characters
    ],
)
def test_a_create_field_out_of_its_bounds_is_refused_naming_it(
    node: Node, field: str, value: Any
) -> None:
    status, named = node.refused("POST", "/v1/task/noop", {"create_info": {field: value}})
    assert status == 400
    assert named is not None and named.startswith(f"create_info.{field}")


#: Every route that takes an id, with an id past the database's range.
ID_ROUTES = [
    ("GET", f"/v1/task/noop?task_id={HUGE_ID}"),
    ("GET", f"/v1/task/noop?task_id={PAST_BIGINT}&action=status"),
    ("PUT", f"/v1/task/noop?task_id={HUGE_ID}&action=pause"),
    ("GET", f"/v1/tasks?parent={HUGE_ID}"),
    ("GET", f"/v1/tasks/{HUGE_ID}/logs"),
    ("POST", f"/v1/tasks/{PAST_BIGINT}/logs"),
    ("GET", f"/v1/tasks/{HUGE_ID}/transitions"),
    ("GET", f"/v1/tasks/{HUGE_ID}/children"),
    ("GET", f"/v1/triggers/{HUGE_ID}"),
    ("PUT", f"/v1/triggers/{HUGE_ID}?action=pause"),
    ("DELETE", f"/v1/triggers/{PAST_BIGINT}"),
]


@pytest.mark.parametrize(("method", "path"), ID_ROUTES)
def test_an_id_past_2_63_names_nothing_it_is_404_never_500(
    node: Node, method: str, path: str
) -> None:
    body = {"lines": [{"message": "x"}]} if method == "POST" else None
    status, _ = node.refused(method, path, body)
    assert status == 404


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (f"/v1/tasks?cursor={HUGE_ID}", "cursor"),
        (f"/v1/triggers?cursor={PAST_BIGINT}", "cursor"),
        (f"/v1/task/noop?task_name=x&cursor={HUGE_ID}", "cursor"),
        (f"/v1/tasks/1/logs?after={HUGE_ID}", "after"),
        ("/v1/tasks?limit=1001", "limit"),
        ("/v1/tasks?limit=0", "limit"),
        ("/v1/tasks?parent=1.5", "parent"),
        ("/v1/tasks?since=0001-01-01T00:00:00%2B14:00", "since"),
        ("/v1/tasks?since=9999-12-31T23:59:59-14:00", "since"),
        ("/v1/tasks?since=2026-01-01T00:00:00", "since"),
    ],
)
def test_a_position_count_or_time_out_of_range_is_400_naming_it(
    node: Node, path: str, field: str
) -> None:
    node.created("/v1/task/noop", {})  # task 1 exists, so only the parameter can be wrong
    assert node.refused("GET", path) == (400, field)


def test_a_page_may_hold_a_thousand(node: Node) -> None:
    assert node.request("GET", "/v1/tasks?limit=1000").status_code == 200


def test_an_attempt_past_2_63_is_400_naming_it(node: Node) -> None:
    task = node.created("/v1/task/noop", {"process_arg": {"task_status": "pause"}})
    path = f"/v1/task/noop?task_id={task['task_id']}&action=heartbeat&attempt={HUGE_ID}"
    assert node.refused("PUT", path, {}) == (400, "attempt")


@pytest.mark.parametrize(
    ("field", "moment"),
    [("start_time", "0001-01-01T00:00:00+01:00"), ("start_time", "9999-12-31T23:00:00-05:00")],
)
def test_a_time_at_the_ends_of_the_calendar_is_refused_naming_it(
    node: Node, field: str, moment: str
) -> None:
    assert node.refused("POST", "/v1/task/noop", noop(**{field: moment})) == (
        400,
        f"process_arg.{field}",
    )
    trigger = {"name": "end", "times": [moment], "template": {"create_info": {"task_type": "noop"}}}
    assert node.refused("POST", "/v1/triggers", trigger) == (400, "times[0]")


def chain(count: int, prefix: str = "n") -> list[dict[str, Any]]:
    return [{"key": f"{prefix}{i}", "task_type": "noop"} for i in range(count)]


def test_a_topology_past_the_node_limit_is_refused_fast_counting_nested_nodes_and_targets(
    node: Node,
) -> None:
    # Given topologies that make one task more than the limit, each in its own way
    nested = [
        *chain(MAX_NODES // 2),
        {"key": "inner", "task_type": "topology", "nodes": chain(MAX_NODES // 2, "i")},
    ]
    fanned = [
        *chain(MAX_NODES - 5),
        {
            "key": "fan",
            "task_type": "noop",
            "create_info": {"targets": list(range(5))},  # 35 + 1 + 5
        },
    ]
    flat = chain(MAX_NODES + 1)
    huge = chain(10_000)
    for nodes in (flat, nested, fanned, huge):
        # When one is submitted
        started = time.monotonic()
        answer = node.refused("POST", "/v1/topology", {"name": "big", "nodes": nodes})
        # Then it is a 400 naming the nodes, answered at once, and nothing is stored
        assert answer == (400, "nodes")
        assert time.monotonic() - started < 10


def test_the_largest_topology_allowed_is_accepted(node: Node) -> None:
    nodes = [
        *chain(MAX_NODES - 6),
        {"key": "fan", "task_type": "noop", "create_info": {"targets": list(range(5))}},
    ]
    created = node.created("/v1/topology", {"name": "largest", "nodes": nodes})
    assert len(created["children"]) == MAX_NODES - 5


def test_fan_out_targets_of_one_create_are_bounded_by_the_same_limit(node: Node) -> None:
    body = {"create_info": {"targets": list(range(MAX_NODES + 1))}}
    assert node.refused("POST", "/v1/task/noop", body) == (400, "create_info.targets")
    accepted = {"create_info": {"targets": list(range(MAX_NODES))}}
    assert node.created("/v1/task/noop", accepted)["task_id"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/tasks", {"tasks": []}, "tasks"),
        ("/v1/topology", {"name": "none", "nodes": []}, "nodes"),
        (
            "/v1/topology",
            {"name": "hollow", "nodes": [{"key": "t", "task_type": "topology", "nodes": []}]},
            "nodes[0].nodes",
        ),
        ("/v1/task/noop", {"create_info": {"targets": []}}, "create_info.targets"),
        (
            "/v1/triggers",
            {"name": "never", "times": [], "template": {"create_info": {"task_type": "noop"}}},
            "times",
        ),
    ],
)
def test_an_empty_list_that_must_hold_something_is_refused_naming_it(
    node: Node, path: str, body: Any, field: str
) -> None:
    assert node.refused("POST", path, body) == (400, field)


def started_at(view: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(view["started_at"])


def times_out_on_time(node: Node) -> None:
    """A task with a 3 s deadline ends timed out a few seconds past it, not minutes."""
    short = node.created(
        "/v1/task/sleep", {"params": {"seconds": 60}, "process_arg": {"deadline_second": 3}}
    )
    ended = wait_until(
        lambda: (v := node.view(short))["task_status"] == "finish" and v,
        20,
        what="the 3 s deadline fired",
    )
    assert ended["outcome"] == "timed_out"
    late = (datetime.fromisoformat(ended["finished_at"]) - started_at(ended)).total_seconds()
    assert 3 <= late < 10


def test_a_3_s_deadline_fires_on_time_beside_a_task_with_the_longest_deadline(
    node: Node,
) -> None:
    # Given a long task with the longest deadline allowed, running
    long = node.created(
        "/v1/task/sleep",
        {"params": {"seconds": 300}, "process_arg": {"deadline_second": MAX_SECONDS}},
    )
    wait_until(lambda: node.view(long)["task_status"] == "running", 30, what="long runs")

    # When a task with a 3 s deadline runs beside it, then it times out on time
    times_out_on_time(node)

    # And when the long task's stored deadline is absurd (a row written before the bound;
    # 1e30 s: no timedelta holds it, and MariaDB's FLOAT column does)
    node.store_deadline(long["task_id"], 1e30)
    # then a 3 s deadline beside it still fires on time: the Checker clamps, never raises
    times_out_on_time(node)

    # ...and the long one still runs
    assert node.view(long)["task_status"] == "running"
    cancel = node.request("PUT", f"/v1/task/sleep?task_id={long['task_id']}&action=cancel")
    assert cancel.status_code == 200, cancel.text
