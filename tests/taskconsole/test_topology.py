"""``topology submit`` and ``tree`` against the real ``POST /v1/topology``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.taskconsole.conftest import Console
from tests.taskconsole.test_errors import one_line_error

DAG = {
    "name": "provision",
    "nodes": [
        {"key": "instance", "task_type": "external", "params": {}},
        {"key": "database", "task_type": "external", "params": {}, "depends_on": ["instance"]},
    ],
}


def test_topology_submit_stores_the_dag_and_tree_draws_it_by_key(
    console: Console, tmp_path: Path
) -> None:
    # Given a DAG in a file
    document = tmp_path / "dag.json"
    document.write_text(json.dumps(DAG))

    # When the operator submits it, for scripts and for people
    control = console.json("topology", "submit", str(document))
    shown = console("topology", "submit", str(document))

    # Then the control task runs and names its children by key
    assert (control["task_type"], control["task_status"]) == ("topology", "running")
    assert set(control["children"]) == {"instance", "database"}
    assert shown.exit_code == 0 and "database" in shown.stdout
    # And the tree draws each child under it with its key and state
    tree = console.json("tree", str(control["task_id"]))
    assert [c["node_key"] for c in tree["children"]] == ["instance", "database"]
    drawn = console("tree", str(control["task_id"])).stdout.splitlines()
    assert drawn[0].startswith(f"#{control['task_id']} topology provision")
    assert any(f"#{control['children']['database']} external [database]" in line for line in drawn)


def test_a_bad_topology_is_a_usage_error_naming_the_node(console: Console, tmp_path: Path) -> None:
    cyclic = {**DAG, "nodes": [{**DAG["nodes"][0], "depends_on": ["database"]}, DAG["nodes"][1]]}
    document = tmp_path / "dag.json"
    document.write_text(json.dumps(cyclic))

    result = console("topology", "submit", str(document))

    assert result.exit_code == 2
    assert "nodes" in one_line_error(result) and "cycle" in one_line_error(result)


def test_trigger_commands_drive_the_real_endpoints(console: Console, tmp_path: Path) -> None:
    # Given a timed definition in a file
    document = tmp_path / "trigger.json"
    definition = {
        "name": "every-minute",
        "cron": "* * * * *",
        "timezone": "Europe/Berlin",
        "template": {"create_info": {"task_type": "external"}, "params": {}},
    }
    document.write_text(json.dumps(definition))

    # When the operator adds, lists, shows, pauses and resumes it, and an admin retires it
    added = console.json("trigger", "add", str(document))
    trigger_id = str(added["trigger_id"])
    listed = console.json("trigger", "list")
    table = console("trigger", "list")
    shown = console.json("trigger", "show", trigger_id)
    paused = console.json("trigger", "pause", trigger_id)
    resumed = console.json("trigger", "resume", trigger_id)
    deleted = console("trigger", "delete", trigger_id, role="admin")
    after = console.json("trigger", "list")
    retired = console("trigger", "list", "--include-retired")

    # Then each does what it says, for scripts and for people
    assert added["kind"] == "timed" and added["next_fire_time"]
    assert any(t["trigger_id"] == added["trigger_id"] for t in listed)
    assert "every-minute" in table.stdout and "cron * * * * *" in table.stdout
    assert len(shown["next_fire_times"]) == 5
    assert (paused["enabled"], resumed["enabled"]) == (False, True)
    assert deleted.exit_code == 0 and f"trigger {trigger_id} retired" in deleted.stdout
    # And the retired trigger leaves the list, but for --include-retired, and still shows
    assert all(t["trigger_id"] != added["trigger_id"] for t in after)
    assert "every-minute" in retired.stdout and "retired" in retired.stdout
    assert console.json("trigger", "show", trigger_id)["retired_at"]
    # And a bad one is a usage error naming the field
    document.write_text(json.dumps({**definition, "name": "bad", "cron": "61 * * * *"}))
    refused = console("trigger", "add", str(document))
    assert refused.exit_code == 2 and "cron" in one_line_error(refused)
