"""``/metrics`` of a real node describes the node: every process of it (gunicorn's API
processes and the loops process) in every scrape, whichever process answers.

The node is ``taskscheduler serve`` with its default number of API processes, its loops and
a worker with the shipped plugins, on SQLite; what the scrapes say is checked against the
transition records, and docs/operating.md's alert rules against a real scrape.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.node import Node, children, command_line, environment, serving_node
from tests.processes import call, wait_until
from tests.scrape import Key, key, samples, series

ROOT = Path(__file__).resolve().parents[2]
#: Samples that change from one scrape to the next by themselves: the API counts the scrapes
#: it answers, and the loops tick all the time.
MOVING = re.compile(r"taskscheduler_(api_request|loop_)")
#: The leases a lone node holds: the Checker's, the callbacks', every Producer shard's.
LEASES = {"sweep:checker", "sweep:callbacks", *(f"producer:{n}" for n in range(8))}
LOOPS = {"scheduler", "controls", "checker", "callbacks", "producer"}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    with serving_node(tmp_path_factory.mktemp("metrics"), capacity=2) as started:
        yield started


def steady(found: dict[Key, float]) -> dict[Key, float]:
    return {k: v for k, v in found.items() if not MOVING.match(k[0])}


def counters(found: dict[Key, float]) -> dict[Key, float]:
    return {k: v for k, v in found.items() if k[0].endswith(("_total", "_count", "_bucket"))}


def test_the_node_runs_its_api_in_several_processes_beside_its_loops(node: Node):
    # Given a node started with serve's defaults
    # When its processes are listed
    own = command_line(node.server.pid)
    processes = [command_line(pid) for pid in children(node.server.pid)]
    # Then two API processes (gunicorn's, forked from the node) and the loops process run
    assert processes.count(own) == 2, processes
    assert sum(b"spawn_main" in line for line in processes) == 1, processes


def test_scrapes_count_every_move_of_every_process_and_agree(node: Node):
    # Given tasks that succeed at several levels, and tasks that fail after a retry
    ids = [node.submit("noop", create_info={"important_level": n % 10}) for n in range(12)]
    failing = {"message": "disk full on db-42"}
    ids += [node.submit("fail", params=failing, process_arg={"max_retry": 1}) for _ in range(3)]
    # When the node is scraped while they run, and once all finished
    seen, deadline = [], time.monotonic() + 60
    while node.unfinished() and time.monotonic() < deadline:
        seen.append(samples(node.scrape()))
        time.sleep(0.05)
    node.wait_all_finished()
    first, second = samples(node.scrape()), samples(node.scrape())
    # Then the moves counted are the records written, by trigger and outcome: the API's
    # (submit, the workers' reports) and the loops' (create, prepare, run, retry) alike
    moves = series(first, "taskscheduler_transitions_total")
    assert {(dict(k)["trigger"], dict(k)["outcome"]): v for k, v in moves.items()} == node.moves()
    assert first[key("taskscheduler_transitions_total", trigger="finish", outcome="failed")] == 3
    # And two scrapes in a row agree, whichever process answered each
    assert steady(first) == steady(second)
    # And no counter ever went down from one scrape to the next
    for before, after in zip([*seen, first], [*seen[1:], first, second], strict=True):
        fell = {k: (v, after.get(k)) for k, v in counters(before).items() if after.get(k, 0) < v}
        assert not fell


def test_the_queue_shows_the_ready_tasks_by_level_while_the_workers_are_full(node: Node):
    # Given the worker's two slots taken by long tasks
    busy = [node.submit("sleep", params={"seconds": 60}) for _ in range(2)]
    wait_until(lambda: all(_state(node, t) == "running" for t in busy), 30, what="running")
    # When three more tasks wait at level 7 and one at level 2
    waiting = [node.submit("noop", create_info={"important_level": 7}) for _ in range(3)]
    waiting.append(node.submit("noop", create_info={"important_level": 2}))
    # Then the scrape shows them by level (within the sampling period), the rest at zero
    expected = {(("level", str(n)),): {7: 3, 2: 1}.get(n, 0) for n in range(10)}
    wait_until(
        lambda: series(samples(node.scrape()), "taskscheduler_queue_depth") == expected,
        10,
        what="queue depth by level",
    )
    # And the worker is counted among the active ones
    assert samples(node.scrape())[key("taskscheduler_workers", status="active")] == 1
    for task_id in [*waiting, *busy]:  # the waiting first: a freed slot would start them
        _act(node, task_id, "cancel")
    node.wait_all_finished()


def test_the_loops_report_their_pace_and_the_leases_this_node_holds(node: Node):
    # Given a node that has run for a while
    # When it is scraped
    found = wait_until(lambda: _with_all_leases(samples(node.scrape())), 30, what="leases")
    # Then each loop has ticked within the last seconds, and is not late
    ticks = series(found, "taskscheduler_loop_last_tick_timestamp_seconds")
    assert {dict(labels)["loop"] for labels in ticks} >= LOOPS
    assert all(time.time() - at < 10 for at in ticks.values())
    lags = series(found, "taskscheduler_loop_lag_seconds")
    assert all(0 <= lag < 5 for lag in lags.values())
    # And this lone node holds every lease its loops work under
    held = series(found, "taskscheduler_lease_held")
    assert {dict(labels)["lease"]: v for labels, v in held.items()} == dict.fromkeys(LEASES, 1)


def test_the_alert_rules_of_the_operating_guide_name_metrics_and_labels_a_node_exports(
    node: Node,
):
    # Given the alert rules docs/operating.md tells operators to load
    rules = _alert_rules()
    assert rules
    # When a node that ran tasks, failing ones among them, is scraped
    node.submit("fail", params={"message": "for the rules"})
    node.wait_all_finished()
    found = samples(node.scrape())
    # Then every metric a rule reads is exported, with every label it matches or groups by
    for rule in rules:
        for name, labels in _selectors(rule["expr"]):
            exported = [dict(k[1]) for k in found if k[0] == name]
            assert exported, f"{rule['alert']}: {name} is not exported"
            for label, op, value in labels:
                assert any(label in s for s in exported), f"{rule['alert']}: {name} has no {label}"
                if op == "=":
                    values = {s.get(label) for s in exported}
                    assert value in values, f"{rule['alert']}: {name}{{{label}={value!r}}}"
        for label in _grouped_by(rule["expr"]):
            names = {name for name, _ in _selectors(rule["expr"])}
            assert any(label in dict(k[1]) for k in found if k[0] in names), rule["alert"]


def _state(node: Node, task_id: int) -> str:
    return str(
        call("GET", f"{node.url}/v1/tasks?cursor={task_id + 1}&limit=1")["items"][0]["task_status"]
    )


def _act(node: Node, task_id: int, action: str) -> None:
    task = call("GET", f"{node.url}/v1/tasks?cursor={task_id + 1}&limit=1")["items"][0]
    path = f"/v1/task/{task['task_type']}?task_id={task_id}&action={action}"
    call("PUT", f"{node.url}{path}", {})


def _with_all_leases(found: dict[Key, float]) -> dict[Key, float] | None:
    held = series(found, "taskscheduler_lease_held")
    return found if len(held) >= len(LEASES) else None


def _alert_rules() -> list[dict[str, Any]]:
    text = (ROOT / "docs" / "operating.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    groups = [group for block in blocks for group in yaml.safe_load(block).get("groups", [])]
    return [rule for group in groups for rule in group["rules"]]


def _selectors(expr: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """Each ``taskscheduler_*`` metric an expression reads, with its label matchers."""
    found = []
    for match in re.finditer(r"\b(taskscheduler_\w+)(\{([^}]*)\})?", expr):
        matchers = re.findall(r'(\w+)\s*(=~|!=|!~|=)\s*"([^"]*)"', match.group(3) or "")
        found.append((match.group(1), matchers))
    return found


def _grouped_by(expr: str) -> set[str]:
    return {
        label.strip()
        for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr)
        for label in group.split(",")
        if label.strip()
    }


def test_the_node_removes_its_metrics_directory_when_it_stops(tmp_path: Path):
    # Given a node of its own, whose processes share a metrics directory
    with serving_node(tmp_path) as own:
        loops = next(p for p in children(own.server.pid) if _is_loops(p))
        directory = Path(environment(loops)["PROMETHEUS_MULTIPROC_DIR"])
        assert any(directory.glob("*.db"))
        # When it is stopped as an operator stops it
        own.server.stop()
    # Then the directory is gone
    assert not directory.exists()


def _is_loops(pid: int) -> bool:
    return b"spawn_main" in command_line(pid)
