"""The shipped provisioning topologies run by real nodes and workers, against real MariaDB.

The success variant builds an instance an application can use; the failing variant is rolled
back by the scheduler's saga and leaves no server, process, file or user behind. Two schema
changes of one table never overlap: the second waits in ``postpose`` for the first's lock.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
import redis

from plugins.mysql.provision import Provision
from taskworker.testing import TaskEnvironment
from tests import services
from tests.e2e.cluster import Cluster, cluster
from tests.e2e.test_cluster import running_intervals
from tests.e2e.test_topologies import submit, task, wait_finished
from tests.plugins.test_examples import load, localise
from tests.processes import call

CREDENTIALS = {
    "TASK_CRED_DEMO_ROOT_USER": "root",
    "TASK_CRED_DEMO_ROOT_PASSWORD": "root-pw",
    "TASK_CRED_DEMO_APP_USER": "shop_app",
    "TASK_CRED_DEMO_APP_PASSWORD": "app-pw",
    "TASK_CRED_LOCAL_USER": "root",
    "TASK_CRED_LOCAL_PASSWORD": "",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    redis_url = services.empty_redis_url()
    folder = tmp_path_factory.mktemp("provisioning")
    with cluster(folder, redis_url=redis_url, worker_env=CREDENTIALS) as running:
        yield running
    redis.Redis.from_url(redis_url).flushdb()


def children(site: Cluster, created: dict[str, Any]) -> dict[str, dict[str, Any]]:
    page = call("GET", f"{site.nodes[0].url}/v1/tasks/{created['task_id']}/children")
    return {c["node_key"]: c for c in page["items"]}


def test_the_provisioning_topology_builds_an_instance_the_application_can_use(site, tmp_path):
    topology = localise(load("provision-mysql.json"), tmp_path)
    port = topology["nodes"][0]["params"]["port"]
    created = submit(site, topology)
    done = wait_finished(site, created["task_id"])
    found = children(site, created)
    try:
        assert done["outcome"] == "succeeded", {k: c["error"] for k, c in found.items()}
        assert {c["outcome"] for c in found.values()} == {"succeeded"}
        login = pymysql.connect(
            host="127.0.0.1", port=port, user="shop_app", password="app-pw", database="shop"
        )
        with login, login.cursor() as cur:
            assert cur.execute("INSERT INTO orders (total) VALUES (9.50)") == 1
        assert found["backup"]["result"]["bytes"] > 0
        assert "app-pw" not in json.dumps(found) + json.dumps(done)
    finally:  # the instance outlives its topology: remove it as an operator would
        TaskEnvironment(Provision, topology["nodes"][0]["params"]).run_step("rollback")


def test_the_failing_variant_is_rolled_back_leaving_nothing_behind(site, tmp_path):
    topology = localise(load("provision-mysql-failing.json"), tmp_path)
    port = topology["nodes"][0]["params"]["port"]
    created = submit(site, topology)
    done = wait_finished(site, created["task_id"])
    found = children(site, created)
    assert done["outcome"] == "rolled_back", {
        k: (c["outcome"], c["error"]) for k, c in found.items()
    }
    outcomes = {key: c["outcome"] for key, c in found.items()}
    assert outcomes["schema"] == "failed"
    assert outcomes["backup"] == "cancelled"
    assert {outcomes[k] for k in ("instance", "database", "user")} == {"rolled_back"}
    pid = found["instance"]["result"]["pid"]
    assert not Path(f"/proc/{pid}").exists()
    with socket.socket() as probe:  # nothing listens on the instance's port any more
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
    assert list(tmp_path.iterdir()) == []
    undone = {key: _undone_at(site, c["task_id"]) for key, c in found.items() if key in outcomes}
    assert undone["user"] <= undone["database"] <= undone["instance"]


def _undone_at(site: Cluster, task_id: int) -> Any:
    return next(
        (r.at for r in site.records() if r.task_id == task_id and r.from_state == "rollback"),
        None,
    )


def test_a_second_schema_change_of_a_table_waits_in_postpose_for_the_first(site):
    database = "ts_e2e_schema"
    with (
        pymysql.connect(host="127.0.0.1", user="root", autocommit=True) as conn,
        conn.cursor() as cur,
    ):
        cur.execute(f"DROP DATABASE IF EXISTS {database}")
        cur.execute(f"CREATE DATABASE {database}")
        cur.execute(f"USE {database}")
        cur.execute("CREATE TABLE big (id INT PRIMARY KEY)")
        cur.execute("INSERT INTO big SELECT seq FROM seq_1_to_300000")
    try:

        def change(column: str) -> dict[str, Any]:
            return {
                "params": {
                    "instance": {"host": "127.0.0.1", "port": 3306},
                    "credentials": "local",
                    "database": database,
                    "table": "big",
                    "ddl": f"ALTER TABLE big ADD COLUMN {column} INT, ALGORITHM=COPY",
                    "rollback_ddl": f"ALTER TABLE big DROP COLUMN {column}",
                }
            }

        ids = [site.submit(i, "mysql_schema_change", change(c)) for i, c in enumerate("ab")]
        for task_id in ids:
            assert wait_finished(site, task_id, "mysql_schema_change")["outcome"] == "succeeded"
        records = site.records()
        intervals = running_intervals(records, set(ids))
        assert intervals[0][1] <= intervals[1][0], "the two changes overlapped"
        assert any(r.trigger == "postpone" for r in records if r.task_id in ids)
        assert [t["outcome"] for t in (task(site, i, "mysql_schema_change") for i in ids)] == [
            "succeeded",
            "succeeded",
        ]
    finally:
        with pymysql.connect(host="127.0.0.1", user="root", autocommit=True) as conn:
            conn.cursor().execute(f"DROP DATABASE IF EXISTS {database}")
