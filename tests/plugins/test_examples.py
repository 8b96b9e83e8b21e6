"""The shipped provisioning topologies: valid as written, and they do what they say.

The DAG is walked with the scheduler's own topology rules (release order, saga rollback
order) and each node runs under a real task context against real servers, so the examples'
plugins and params are proven here; running them through the scheduler is the e2e suites' job.
"""

from __future__ import annotations

import json
import socket
import uuid
from graphlib import TopologicalSorter
from pathlib import Path

import pymysql
import pytest

from taskscheduler.control.dag import check_dag
from taskworker import TaskFailed
from taskworker.discovery import discover
from taskworker.testing import TaskEnvironment

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PLUGINS = discover(entry_points=False).types


def load(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


@pytest.mark.parametrize("name", ["provision-mysql.json", "provision-mysql-failing.json"])
def test_the_examples_are_valid_dags_of_valid_tasks(name):
    topology = load(name)
    check_dag([(n["key"], n.get("depends_on", [])) for n in topology["nodes"]])
    for node in topology["nodes"]:
        PLUGINS[node["task_type"]].validate_params(node["params"])


def localise(topology: dict, base_dir: Path) -> dict:
    """Point the example at a free port and a private directory, as an operator would."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    text = json.dumps(topology).replace("3407", str(port))
    text = text.replace("/tmp/taskscheduler-instances", str(base_dir))
    text = text.replace("db_demo", f"db_{uuid.uuid4().hex[:8]}")
    return json.loads(text)


def walk(topology: dict, after_each=lambda key: None) -> tuple[list[str], list[str], dict]:
    """Run the DAG in dependency order; on a failure roll back what succeeded, in reverse.
    A run that succeeds is rolled back too at the end, after ``after_each`` saw each node."""
    graph = check_dag([(n["key"], n.get("depends_on", [])) for n in topology["nodes"]])
    order = list(TopologicalSorter(graph).static_order())  # every node after its parents
    nodes = {n["key"]: n for n in topology["nodes"]}
    envs: dict[str, TaskEnvironment] = {}
    results: dict[str, object] = {}
    succeeded: list[str] = []

    def undo_order() -> list[str]:
        return [key for key in reversed(order) if key in succeeded]

    for key in order:
        envs[key] = env = TaskEnvironment(
            PLUGINS[nodes[key]["task_type"]], nodes[key]["params"], task_id=len(envs) + 1
        )
        try:
            results[key] = env.run_step()
        except TaskFailed:
            undone = undo_order()
            for done in undone:
                envs[done].run_step("rollback")
            return succeeded, undone, results
        succeeded.append(key)
        after_each(key)
    for key in undo_order():  # leave the machine as it was
        envs[key].run_step("rollback")
    return succeeded, [], results


@pytest.fixture
def demo_credentials(monkeypatch):
    monkeypatch.setenv("TASK_CRED_DEMO_ROOT_USER", "root")
    monkeypatch.setenv("TASK_CRED_DEMO_ROOT_PASSWORD", "root-pw")
    monkeypatch.setenv("TASK_CRED_DEMO_APP_USER", "shop_app")
    monkeypatch.setenv("TASK_CRED_DEMO_APP_PASSWORD", "app-pw")


def test_the_provisioning_topology_builds_a_working_instance(tmp_path, demo_credentials):
    topology = localise(load("provision-mysql.json"), tmp_path)
    port = topology["nodes"][0]["params"]["port"]
    served: list[int] = []

    def use_the_instance(key: str) -> None:
        if key == "backup":  # the last node: the instance is complete and serving
            login = pymysql.connect(
                host="127.0.0.1", port=port, user="shop_app", password="app-pw", database="shop"
            )
            with login, login.cursor() as cur:
                served.append(cur.execute("INSERT INTO orders (total) VALUES (9.50)"))

    succeeded, undone, results = walk(topology, after_each=use_the_instance)
    assert succeeded[0] == "instance" and succeeded[-1] == "backup" and undone == []
    assert served == [1], "the app user could write to the new table"
    assert results["backup"]["bytes"] > 0


def test_the_failing_topology_is_rolled_back_leaving_nothing_behind(tmp_path, demo_credentials):
    # Given the variant whose schema change the server refuses
    topology = localise(load("provision-mysql-failing.json"), tmp_path)
    port = topology["nodes"][0]["params"]["port"]
    # When it runs
    succeeded, undone, results = walk(topology)
    # Then what had succeeded was undone, children before parents
    assert "schema" not in succeeded
    assert undone.index("database") < undone.index("instance")
    if "user" in undone:
        assert undone.index("user") < undone.index("database")
    # And nothing is left: no server on the port, no files, no instance process
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not a server
        probe.bind(("127.0.0.1", port))
        probe.listen()
    assert list(tmp_path.iterdir()) == []
    assert not Path(f"/proc/{results['instance']['pid']}").exists()
