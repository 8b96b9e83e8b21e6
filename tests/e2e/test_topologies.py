"""Topologies and fan-outs run by real nodes and workers on MariaDB and Redis.

Order is proven from the transition records: a child's run starts at its ``run`` record and
ends at its ``succeed`` or ``fail`` record; an undo ends at its ``finish`` from ``rollback``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests import services
from tests.e2e.cluster import Cluster, cluster
from tests.processes import call, wait_until


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    redis_url = services.empty_redis_url()
    with cluster(tmp_path_factory.mktemp("topologies"), redis_url=redis_url) as running:
        yield running
    redis.Redis.from_url(redis_url).flushdb()


def submit(site: Cluster, topology: dict[str, Any]) -> dict[str, Any]:
    return call("POST", f"{site.nodes[0].url}/v1/topology", topology)


def task(site: Cluster, task_id: int, task_type: str = "topology") -> dict[str, Any]:
    return call("GET", f"{site.nodes[1].url}/v1/task/{task_type}?task_id={task_id}")


def wait_finished(site: Cluster, task_id: int, task_type: str = "topology") -> dict[str, Any]:
    """The task once finished; if it does not finish, fail telling its and its children's
    stories."""
    try:
        wait_until(
            lambda: task(site, task_id, task_type)["task_status"] == "finish", 60, what="finish"
        )
    except AssertionError:
        page = call("GET", f"{site.nodes[0].url}/v1/tasks/{task_id}/children")
        family = [task_id, *(c["task_id"] for c in page["items"])]
        raise AssertionError("\n".join(site.story(i) for i in family)) from None
    return task(site, task_id, task_type)


def times(site: Cluster, task_id: int) -> dict[str, Any]:
    """When the task's run started and ended, and when its rollback ended (if it had one)."""
    found: dict[str, Any] = {}
    for record in site.records():
        if record.task_id != task_id:
            continue
        if record.trigger == "run":
            found["start"] = record.at
        elif record.trigger in ("succeed", "fail"):
            found["end"] = record.at
        elif record.trigger == "rollback":
            found["undo"] = record.at
        elif record.trigger == "finish" and record.from_state == "rollback":
            found["undone"] = record.at
    return found


def shell(seconds: float, **more: Any) -> dict[str, Any]:
    return {"task_type": "shell", "params": {"argv": ["sleep", str(seconds)], **more}}


def test_a_diamond_runs_its_middle_in_parallel_after_the_root_and_the_join_after_both(site):
    topology = {
        "name": "diamond",
        "nodes": [
            {"key": "a", **shell(0.3)},
            {"key": "b", **shell(0.6), "depends_on": ["a"]},
            {"key": "c", **shell(0.6), "depends_on": ["a"]},
            {"key": "d", **shell(0.1), "depends_on": ["b", "c"]},
        ],
    }
    created = submit(site, topology)
    assert created["task_status"] == "running"
    assert set(created["children"]) == {"a", "b", "c", "d"}
    done = wait_finished(site, created["task_id"])
    assert (done["outcome"], done["progress"]["percent"]) == ("succeeded", 100.0)
    at = {key: times(site, task_id) for key, task_id in created["children"].items()}
    assert at["a"]["end"] <= min(at["b"]["start"], at["c"]["start"])
    assert max(at["b"]["end"], at["c"]["end"]) <= at["d"]["start"]
    assert at["b"]["start"] < at["c"]["end"] and at["c"]["start"] < at["b"]["end"]
    children = [task(site, i, "shell") for i in created["children"].values()]
    assert {(c["task_status"], c["outcome"]) for c in children} == {("finish", "succeeded")}
    assert {c["control_task_id"] for c in children} == {created["task_id"]}


def test_a_failed_child_with_rollback_undoes_the_succeeded_in_reverse_order(site, tmp_path):
    undo_log = tmp_path / "undone"

    def undoable(key: str, seconds: float) -> dict[str, Any]:
        return shell(seconds, rollback_argv=["sh", "-c", f"echo {key} >> {undo_log}"])

    topology = {
        "name": "saga",
        "on_failure": "rollback",
        "nodes": [
            {"key": "provision", **undoable("provision", 0.1)},
            {"key": "database", **undoable("database", 0.1), "depends_on": ["provision"]},
            {"key": "user", **undoable("user", 0.1), "depends_on": ["provision"]},
            {
                "key": "schema",
                "task_type": "fail",
                "params": {"message": "the server refused the DDL"},
                "depends_on": ["database", "user"],
            },
            {"key": "backup", **undoable("backup", 0.1), "depends_on": ["schema"]},
        ],
    }
    created = submit(site, topology)
    done = wait_finished(site, created["task_id"])
    assert done["outcome"] == "rolled_back"
    ids = created["children"]
    outcomes = {
        key: task(site, i, "shell" if key != "schema" else "fail") for key, i in ids.items()
    }
    assert {k: c["outcome"] for k, c in outcomes.items()} == {
        "provision": "rolled_back",
        "database": "rolled_back",
        "user": "rolled_back",
        "schema": "failed",
        "backup": "cancelled",
    }
    lines = undo_log.read_text().split()
    assert sorted(lines[:2]) == ["database", "user"] and lines[2:] == ["provision"]
    at = {key: times(site, i) for key, i in ids.items()}
    assert max(at["database"]["undone"], at["user"]["undone"]) <= at["provision"]["undo"]
    assert "start" not in at["backup"]


@pytest.mark.parametrize(
    ("strategy", "outcomes"),
    [
        ("serial_blocking", ["succeeded", "failed", "cancelled", "cancelled"]),
        ("serial_nonblocking", ["succeeded", "failed", "succeeded", "succeeded"]),
        ("parallel", ["succeeded", "failed", "succeeded", "succeeded"]),
    ],
)
def test_each_fan_out_strategy_with_a_failing_target(site, strategy, outcomes):
    body = {
        "create_info": {
            "targets": ["db-1", "bad", "db-2", "db-3"],
            "strategy": strategy,
            **({"max_parallel": 2} if strategy == "parallel" else {}),
        },
        "params": {"argv": ["sh", "-c", "sleep 0.3; test {target} != bad"]},
    }
    parent = call("POST", f"{site.nodes[0].url}/v1/task/shell", body)
    done = wait_finished(site, parent["task_id"], "shell")
    assert done["outcome"] == "failed"
    page = call("GET", f"{site.nodes[0].url}/v1/tasks/{parent['task_id']}/children")
    targets = page["items"]
    assert [t["target"] for t in targets] == ["db-1", "bad", "db-2", "db-3"]
    assert [t["outcome"] for t in targets] == outcomes
    runs = sorted(
        (times(site, t["task_id"])["start"], times(site, t["task_id"])["end"])
        for t in targets
        if t["outcome"] != "cancelled"
    )
    most_at_once = max(sum(start <= moment < end for start, end in runs) for moment, _ in runs)
    assert most_at_once == (2 if strategy == "parallel" else 1)


def test_pausing_a_topology_pauses_its_running_child_and_continue_resumes_it(site):
    created = submit(
        site,
        {
            "name": "pausable",
            "nodes": [
                {"key": "long", "task_type": "sleep", "params": {"seconds": 1.5}},
                {"key": "after", "task_type": "noop", "depends_on": ["long"]},
            ],
        },
    )
    control, long_id = created["task_id"], created["children"]["long"]
    wait_until(lambda: task(site, long_id, "sleep")["task_status"] == "running", 30, what="run")
    url = f"{site.nodes[1].url}/v1/task/topology?task_id={control}"
    call("PUT", f"{url}&action=pause")
    wait_until(lambda: task(site, long_id, "sleep")["task_status"] == "pause", 30, what="pause")
    call("PUT", f"{url}&action=continue")
    done = wait_finished(site, control)
    assert done["outcome"] == "succeeded"
    assert task(site, long_id, "sleep")["outcome"] == "succeeded"


def test_continue_of_a_topology_resumes_only_the_children_it_paused_itself(site):
    # Given a topology of two parallel sleeps, one of them paused by an operator
    created = submit(
        site,
        {
            "name": "paused-apart",
            "nodes": [
                {"key": "mine", "task_type": "sleep", "params": {"seconds": 2}},
                {"key": "theirs", "task_type": "sleep", "params": {"seconds": 2}},
            ],
        },
    )
    control = created["task_id"]
    mine, theirs = created["children"]["mine"], created["children"]["theirs"]
    for child in (mine, theirs):
        wait_until(lambda c=child: task(site, c, "sleep")["task_status"] == "running", 30)
    call("PUT", f"{site.nodes[0].url}/v1/task/sleep?task_id={theirs}&action=pause")
    # When the topology is paused, then continued
    url = f"{site.nodes[1].url}/v1/task/topology?task_id={control}"
    call("PUT", f"{url}&action=pause")
    wait_until(lambda: task(site, mine, "sleep")["task_status"] == "pause", 30, what="pause")
    call("PUT", f"{url}&action=continue")
    # Then the child it paused runs to its end (held in success for the topology), and the
    # operator's stays paused until the operator continues it
    wait_until(lambda: task(site, mine, "sleep")["task_status"] == "success", 30, what="run")
    assert task(site, theirs, "sleep")["task_status"] == "pause"
    call("PUT", f"{site.nodes[0].url}/v1/task/sleep?task_id={theirs}&action=continue")
    assert wait_finished(site, control)["outcome"] == "succeeded"
    assert task(site, mine, "sleep")["outcome"] == "succeeded"


def test_cancelling_a_topology_cancels_its_children(site):
    created = submit(
        site,
        {
            "name": "cancellable",
            "nodes": [
                {"key": "long", "task_type": "sleep", "params": {"seconds": 30}},
                {"key": "after", "task_type": "noop", "depends_on": ["long"]},
            ],
        },
    )
    long_id = created["children"]["long"]
    wait_until(lambda: task(site, long_id, "sleep")["task_status"] == "running", 30, what="run")
    call("PUT", f"{site.nodes[0].url}/v1/task/topology?task_id={created['task_id']}&action=cancel")
    assert wait_finished(site, created["task_id"])["outcome"] == "cancelled"
    assert wait_finished(site, long_id, "sleep")["outcome"] == "cancelled"
    assert wait_finished(site, created["children"]["after"], "noop")["outcome"] == "cancelled"


def test_a_nested_topology_runs_as_one_node_of_its_outer_topology(site):
    created = submit(
        site,
        {
            "name": "outer",
            "nodes": [
                {"key": "first", "task_type": "noop"},
                {
                    "key": "inner",
                    "task_type": "topology",
                    "depends_on": ["first"],
                    "nodes": [
                        {"key": "x", "task_type": "noop"},
                        {"key": "y", "task_type": "noop", "depends_on": ["x"]},
                    ],
                },
                {"key": "last", "task_type": "noop", "depends_on": ["inner"]},
            ],
        },
    )
    assert wait_finished(site, created["task_id"])["outcome"] == "succeeded"
    inner = created["children"]["inner"]
    assert task(site, inner)["outcome"] == "succeeded"
    page = call("GET", f"{site.nodes[0].url}/v1/tasks/{inner}/children")
    inner_children = {c["node_key"]: c for c in page["items"]}
    assert {k: c["outcome"] for k, c in inner_children.items()} == {
        "x": "succeeded",
        "y": "succeeded",
    }
    first, last = (
        times(site, created["children"]["first"]),
        times(site, created["children"]["last"]),
    )
    assert first["end"] <= times(site, inner_children["x"]["task_id"])["start"]
    assert times(site, inner_children["y"]["task_id"])["end"] <= last["start"]
