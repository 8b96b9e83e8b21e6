"""Undo as an operator meets it, on real nodes and workers over MariaDB and Redis: a saga of
plugins with nothing to undo ends rolled back, and a finished schema change is reverted on
the real MariaDB, its column dropped; what cannot be reverted is refused with 409."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
import redis

from taskscheduler.workers.client import WorkerClient
from tests import services
from tests.e2e.cluster import SECRET, Cluster, cluster
from tests.e2e.test_topologies import submit, task, wait_finished
from tests.processes import call

#: The shipped MySQL plugins reach the local MariaDB as root through this reference.
CREDENTIALS = {"TASK_CRED_LOCAL_USER": "root", "TASK_CRED_LOCAL_PASSWORD": ""}
DATABASE = "ts_e2e_revert"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    redis_url = services.empty_redis_url()
    folder = tmp_path_factory.mktemp("undo")
    with cluster(folder, redis_url=redis_url, capacity=4, worker_env=CREDENTIALS) as running:
        yield running
    redis.Redis.from_url(redis_url).flushdb()


def put(site: Cluster, task_type: str, task_id: int, action: str) -> tuple[int, Any]:
    """``PUT ...&action=`` through a node: the status and the body, whatever the status."""
    url = f"{site.nodes[0].url}/v1/task/{task_type}?task_id={task_id}&action={action}"
    request = urllib.request.Request(
        url, data=b"{}", method="PUT", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def children(site: Cluster, control_id: int) -> dict[str, dict[str, Any]]:
    page = call("GET", f"{site.nodes[0].url}/v1/tasks/{control_id}/children")
    return {child["node_key"]: child for child in page["items"]}


def test_a_saga_of_noop_sleep_and_fail_ends_rolled_back_without_asking_their_workers(site):
    # Given a topology that rolls back on failure: noop, then sleep, then a step that fails
    created = submit(
        site,
        {
            "name": "saga-of-nothing",
            "on_failure": "rollback",
            "nodes": [
                {"key": "noop", "task_type": "noop"},
                {
                    "key": "sleep",
                    "task_type": "sleep",
                    "params": {"seconds": 0.2},
                    "depends_on": ["noop"],
                },
                {"key": "fail", "task_type": "fail", "depends_on": ["sleep"]},
            ],
        },
    )
    # When it runs to its end
    done = wait_finished(site, created["task_id"])
    # Then it is rolled back: the steps with nothing to undo are rolled back, the failed one
    # failed, and its progress tells them apart
    found = children(site, created["task_id"])
    assert done["outcome"] == "rolled_back", {k: c["outcome"] for k, c in found.items()}
    assert {key: c["outcome"] for key, c in found.items()} == {
        "noop": "rolled_back",
        "sleep": "rolled_back",
        "fail": "failed",
    }
    assert done["progress"]["message"] == "1 failed, 2 rolled back"
    # And the records say why, in reverse order of the DAG
    undone = {
        key: [r for r in site.records() if r.task_id == c["task_id"] and r.trigger == "rollback"]
        for key, c in found.items()
        if key != "fail"
    }
    assert undone["noop"][0].reason == "the noop plugin has nothing to undo"
    assert undone["sleep"][0].reason == "the sleep plugin has nothing to undo"
    assert undone["sleep"][0].id < undone["noop"][0].id
    # And their workers were never asked to roll them back: they still hold them as succeeded
    client = WorkerClient(SECRET, "test")
    for key in ("noop", "sleep"):
        child = found[key]
        seen = client.status(child["worker"], key, child["task_id"], child["attempt"])
        assert seen["task_status"] == "success"


@pytest.fixture
def table() -> Iterator[str]:
    with (
        pymysql.connect(host="127.0.0.1", user="root", autocommit=True) as conn,
        conn.cursor() as cur,
    ):
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        cur.execute(f"CREATE DATABASE {DATABASE}")
        cur.execute(f"CREATE TABLE {DATABASE}.orders (id INT PRIMARY KEY)")
    try:
        yield "orders"
    finally:
        with pymysql.connect(host="127.0.0.1", user="root", autocommit=True) as conn:
            conn.cursor().execute(f"DROP DATABASE IF EXISTS {DATABASE}")


def columns(table: str) -> list[str]:
    with pymysql.connect(host="127.0.0.1", user="root") as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            (DATABASE, table),
        )
        return [row[0] for row in cur.fetchall()]


def test_a_reverted_schema_change_drops_the_column_it_added(site, table):
    # Given a schema change that added a column, finished
    change = {
        "params": {
            "instance": {"host": "127.0.0.1", "port": 3306},
            "credentials": "local",
            "database": DATABASE,
            "table": table,
            "ddl": f"ALTER TABLE {table} ADD COLUMN coupon VARCHAR(32)",
            "rollback_ddl": f"ALTER TABLE {table} DROP COLUMN coupon",
        }
    }
    task_id = site.submit(0, "mysql_schema_change", change)
    assert wait_finished(site, task_id, "mysql_schema_change")["outcome"] == "succeeded"
    assert columns(table) == ["id", "coupon"]
    # When an operator reverts it
    status, revert = put(site, "mysql_schema_change", task_id, "revert")
    # Then a new task of the type, linked to it, runs the plugin's rollback: the column is gone
    assert status == 201, revert
    assert revert["reverts_task_id"] == task_id
    done = wait_finished(site, revert["task_id"], "mysql_schema_change")
    assert done["outcome"] == "succeeded", site.story(revert["task_id"])
    assert done["result"] == {"reverted_task_id": task_id}
    assert columns(table) == ["id"]
    # And it held the table's lock while it did, as the change had
    assert done["resources"] == [f"mysql:127.0.0.1:3306/{DATABASE}.{table}"]
    # And the reverted task is untouched, and cannot be reverted twice
    assert task(site, task_id, "mysql_schema_change")["outcome"] == "succeeded"
    again, refused = put(site, "mysql_schema_change", task_id, "revert")
    assert again == 409
    assert f"task {revert['task_id']} (succeeded)" in refused["description"]


def test_a_failed_task_and_a_task_with_nothing_to_undo_are_not_reverted(site):
    # Given a task that failed and a noop that succeeded
    failed = site.submit(0, "fail", {"params": {"message": "no"}})
    noop = site.submit(1, "noop", {})
    assert wait_finished(site, failed, "fail")["outcome"] == "failed"
    assert wait_finished(site, noop, "noop")["outcome"] == "succeeded"
    # When an operator reverts each
    answers = {
        "fail": put(site, "fail", failed, "revert"),
        "noop": put(site, "noop", noop, "revert"),
    }
    # Then both are refused with 409, saying why, and no task was made
    assert {name: status for name, (status, _) in answers.items()} == {"fail": 409, "noop": 409}
    assert "only a task that finished succeeded" in answers["fail"][1]["description"]
    assert "the noop plugin has nothing to undo" in answers["noop"][1]["description"]
    assert max(site.outcomes()) == noop
