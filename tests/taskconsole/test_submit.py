"""``taskconsole submit``: options become the create body; bad input is refused, naming it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from tests.taskconsole.conftest import Console


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_submit_sends_every_option_into_the_stored_task(console: Console) -> None:
    # Given a name no other test uses
    name = unique("nightly")

    # When an operator submits a task with every option
    task = console.submit(
        "sleep",
        *("--param", "seconds=2.5", "--name", name, "--priority", "7"),
        *("--resource", "mysql:db-1", "--resource", "mysql:db-2"),
        *("--start-at", "2030-01-02T03:04:05Z", "--deadline", "60", "--max-retry", "3"),
    )

    # Then the scheduler stored exactly those values (waiting in postpose for its start time)
    stored = console.json("show", str(task["task_id"]))
    assert stored["task_status"] == "postpose"
    assert stored["params"] == {"seconds": 2.5}
    assert stored["task_name"] == name
    assert stored["important_level"] == 7
    assert stored["resources"] == ["mysql:db-1", "mysql:db-2"]
    assert stored["start_time"].startswith("2030-01-02T03:04:05")
    assert stored["deadline_second"] == 60
    assert stored["max_retry"] == 3


def test_a_param_value_is_json_when_it_parses_and_a_string_otherwise(
    console: Console, tmp_path: Path
) -> None:
    # Given a params file, overridden and extended on the command line
    params_file = tmp_path / "params.json"
    params_file.write_text(json.dumps({"note": "from the file", "keep": True}))

    # When the external task is submitted with both
    task = console.submit(
        "external",
        *("--params-file", str(params_file), "--param", "note=db-42"),
        *("--param", 'tags=["a", "b"]', "--param", "count=3", "--param", "empty="),
    )

    # Then JSON values kept their type, the rest are strings, and the flag wins over the file
    assert task["params"] == {
        "note": "db-42",
        "keep": True,
        "tags": ["a", "b"],
        "count": 3,
        "empty": "",
    }


def test_submitting_the_same_idempotency_key_twice_returns_the_first_task(
    console: Console,
) -> None:
    # Given a task submitted with an idempotency key
    key = unique("key")
    first = console.submit("sleep", "--idempotency-key", key)

    # When the same key is submitted again
    second = console.submit("sleep", "--idempotency-key", key)

    # Then the scheduler answers with the first task, not a new one
    assert second["task_id"] == first["task_id"]


def test_params_failing_the_plugin_schema_exit_2_naming_the_field_and_store_nothing(
    console: Console,
) -> None:
    # Given a name to look for afterwards
    name = unique("bad")

    # When the sleep task gets a string for its number
    result = console("submit", "sleep", "--param", "seconds=soon", "--name", name)

    # Then one line names the field, the exit code is 2, and no task was stored
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert "params.seconds" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert console.json("list", "--name", name) == []


def test_an_unknown_task_type_exits_3(console: Console) -> None:
    result = console("submit", "no_such_type")

    assert result.exit_code == 3
    assert "no_such_type" in result.stderr


def test_a_param_without_an_equals_sign_is_a_usage_error(console: Console) -> None:
    result = console("submit", "sleep", "--param", "seconds")

    assert result.exit_code == 2
    assert "--param" in result.stderr


def test_a_start_time_without_a_zone_is_refused_before_anything_is_sent(
    console: Console,
) -> None:
    name = unique("naive")

    result = console("submit", "sleep", "--start-at", "2030-01-02T03:04:05", "--name", name)

    assert result.exit_code == 2
    assert "--start-at" in result.stderr
    assert console.json("list", "--name", name) == []


def test_a_params_file_that_is_not_a_json_object_is_a_usage_error(
    console: Console, tmp_path: Path
) -> None:
    # Given a file that is not JSON and one that holds a list
    broken = tmp_path / "broken.json"
    broken.write_text("{seconds: 1")
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")

    # When each is submitted, and a file that does not exist
    results = [
        console("submit", "sleep", "--params-file", str(path))
        for path in (broken, listed, tmp_path / "missing.json")
    ]

    # Then each exits 2 naming the option
    assert [r.exit_code for r in results] == [2, 2, 2]
    assert all("--params-file" in r.stderr for r in results)


def test_submit_prints_the_new_task_for_people(console: Console) -> None:
    result = console("submit", "sleep", "--param", "seconds=1")

    assert result.exit_code == 0
    assert result.stdout.startswith("task ")
    assert "submitted: init" in result.stdout
