"""Read-only commands: ``list``, ``show``, ``tree``, ``workers``, ``types``."""

from __future__ import annotations

from typing import Any

from tests.taskconsole.conftest import Console, Scheduler
from tests.taskconsole.test_submit import unique


def ids(tasks: list[dict[str, Any]]) -> list[int]:
    return [task["task_id"] for task in tasks]


def test_list_filters_by_name_type_state_and_outcome(console: Console) -> None:
    # Given three tasks under one name: a sleep, an external, and a cancelled sleep
    name = unique("batch")
    sleep = console.submit("sleep", "--name", name)["task_id"]
    external = console.submit("external", "--name", name)["task_id"]
    cancelled = console.submit("sleep", "--name", name)["task_id"]
    console.json("cancel", str(cancelled))

    # When the operator lists them with each filter
    everything = console.json("list", "--name", name)
    sleeps = console.json("list", "--name", name, "--type", "sleep")
    waiting = console.json("list", "--name", name, "--state", "init")
    ended = console.json("list", "--name", name, "--outcome", "cancelled")

    # Then each filter keeps exactly the matching tasks, newest first
    assert ids(everything) == [cancelled, external, sleep]
    assert ids(sleeps) == [cancelled, sleep]
    assert ids(waiting) == [external, sleep]
    assert ids(ended) == [cancelled]


def test_list_stops_at_the_limit_unless_all_is_asked(console: Console) -> None:
    name = unique("many")
    made = [console.submit("sleep", "--name", name)["task_id"] for _ in range(3)]

    limited = console.json("list", "--name", name, "--limit", "2")
    everything = console.json("list", "--name", name, "--limit", "2", "--all")

    assert ids(limited) == made[::-1][:2]
    assert ids(everything) == made[::-1]


def test_list_since_a_time_keeps_only_tasks_created_from_then(console: Console) -> None:
    name = unique("since")
    made = console.submit("sleep", "--name", name)["task_id"]

    past = console.json("list", "--name", name, "--since", "2000-01-01T00:00:00Z")
    future = console.json("list", "--name", name, "--since", "2999-01-01T00:00:00+02:00")

    assert ids(past) == [made]
    assert future == []


def test_list_with_a_bad_filter_exits_2_naming_it(console: Console) -> None:
    unknown_state = console("list", "--state", "sleeping")
    naive_since = console("list", "--since", "2020-01-01")

    assert unknown_state.exit_code == 2
    assert "state" in unknown_state.stderr
    assert naive_since.exit_code == 2
    assert "--since" in naive_since.stderr


def test_list_draws_a_table_for_people(console: Console) -> None:
    name = unique("table")
    made = console.submit("sleep", "--name", name)["task_id"]

    result = console("list", "--name", name)

    assert result.exit_code == 0
    header, row = result.stdout.strip().splitlines()
    assert header.split()[:4] == ["ID", "TYPE", "NAME", "STATUS"]
    assert row.split()[:4] == [str(made), "sleep", name, "init"]


def test_show_prints_the_task_with_its_transition_record(console: Console) -> None:
    # Given a task that was paused with a reason
    task_id = str(console.submit()["task_id"])
    console.json("pause", task_id, "--reason", "hold")

    # When it is shown as JSON and for people
    shown = console.json("show", task_id)
    drawn = console("show", task_id)

    # Then both carry the state and the history
    assert shown["task_status"] == "pause"
    assert [(r["from_state"], r["to_state"]) for r in shown["transitions"]] == [
        ("none", "init"),
        ("init", "pause"),
    ]
    assert drawn.exit_code == 0
    assert "pause" in drawn.stdout
    assert "hold" in drawn.stdout


def test_tree_draws_children_recursively_with_their_states(
    console: Console, scheduler: Scheduler
) -> None:
    # Given a task with two children, one of which has a child of its own
    root = console.submit("external", "--name", "root")["task_id"]

    def child(parent: int, name: str) -> int:
        body = {"create_info": {"task_name": name, "parent_task_id": parent}, "params": {}}
        return int(scheduler.api("POST", "/v1/task/external", json=body)["task_id"])

    first = child(root, "first")
    second = child(root, "second")
    grandchild = child(first, "grandchild")
    console.json("cancel", str(second))

    # When the operator draws the tree, as JSON and for people
    found = console.json("tree", str(root))
    drawn = console("tree", str(root))

    # Then every descendant appears under its parent with its state
    assert found["task_id"] == root
    assert [c["task_id"] for c in found["children"]] == [first, second]
    assert [c["task_id"] for c in found["children"][0]["children"]] == [grandchild]
    assert found["children"][1]["outcome"] == "cancelled"
    lines = drawn.stdout.splitlines()
    assert lines[0].startswith(f"#{root} external root")
    assert any(f"#{grandchild} external grandchild" in line for line in lines)
    assert any(f"#{second}" in line and "finish (cancelled)" in line for line in lines)


def test_tree_of_a_task_without_children_is_just_the_task(console: Console) -> None:
    task_id = console.submit()["task_id"]

    found = console.json("tree", str(task_id))

    assert found["task_id"] == task_id
    assert found["children"] == []


def test_workers_and_types_show_what_the_registered_worker_serves(console: Console) -> None:
    workers = console.json("workers", role="viewer")
    types = {t["task_type"]: t for t in console.json("types", role="viewer")}
    drawn = console("types", role="viewer")

    assert [w["name"] for w in workers] == ["w1"]
    assert sorted(workers[0]["task_types"]) == ["external", "sleep"]
    assert types["sleep"]["workers"] == ["w1"]
    assert types["external"]["blocking"] is False
    assert "seconds*" in drawn.stdout
