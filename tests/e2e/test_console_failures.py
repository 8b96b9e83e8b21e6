"""Why a task failed, as the console tells it: ``submit --wait``, ``watch`` and ``show`` of a
failed task print its error and its last records, and ``--json`` prints an error object
with the exit code docs/cli.md gives. The real console, against a real node with its loops
and a worker running the shipped ``fail`` plugin."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from tests.e2e.node import Node, serving_node
from tests.processes import PYTHON

MESSAGE = "disk full on db-42 [/var/lib/mysql]"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    with serving_node(tmp_path_factory.mktemp("console")) as started:
        yield started


def console(node: Node, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [PYTHON, "-m", "taskconsole", "--url", node.url, *args]
    env = {"COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    return subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture(scope="module")
def failed(node: Node) -> int:
    """A task that failed after one retry, through ``submit --wait`` (checked below)."""
    return node.submit("fail", params={"message": MESSAGE}, process_arg={"max_retry": 1})


def test_submit_wait_prints_the_error_and_the_last_records_of_a_failed_task(node: Node):
    # Given a plugin that fails with a message
    # When an operator submits it and waits
    done = console(node, "submit", "fail", "-p", f"message={MESSAGE}", "--wait")
    # Then it exits 1, and says how it ended, why, and the moves that led there
    assert done.returncode == 1, done.stderr
    assert "finish (failed)" in done.stdout
    assert MESSAGE in done.stdout
    assert "last transitions" in done.stdout
    assert "fail" in done.stdout.split("last transitions", 1)[1]


def test_watch_of_a_task_that_failed_prints_its_error_and_exits_1(node: Node, failed: int):
    # Given a task that failed after a retry
    # When an operator watches it
    done = console(node, "watch", str(failed))
    # Then the error and the last records, the failed run's and the end, are printed
    assert done.returncode == 1, done.stderr
    assert MESSAGE in done.stdout
    records = done.stdout.split("last transitions", 1)[1].splitlines()
    assert [line.split()[2] for line in records[1:] if line.strip()][-2:] == ["fail", "finish"]


def test_show_puts_the_error_of_a_failed_task_next_to_its_outcome(node: Node, failed: int):
    # Given a task that failed
    console(node, "watch", str(failed))
    # When it is shown
    done = console(node, "show", str(failed))
    # Then its error follows its outcome, whole, before the other fields
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    outcome = next(i for i, line in enumerate(lines) if line.startswith("outcome"))
    assert lines[outcome + 1].startswith("error") and MESSAGE in lines[outcome + 1]


def test_json_watch_of_a_failed_task_gives_the_task_with_its_error_and_records(
    node: Node, failed: int
):
    # Given a task that failed
    # When a script watches it with --json
    done = console(node, "--json", "watch", str(failed))
    # Then stdout is the finished task, its error and its records, and the exit code 1
    assert done.returncode == 1
    task = json.loads(done.stdout)
    assert (task["outcome"], task["error"]["message"]) == ("failed", MESSAGE)
    assert [r["trigger"] for r in task["transitions"]][-2:] == ["fail", "finish"]


@pytest.mark.parametrize(
    ("args", "code", "kind"),
    [
        (("show", "999999"), 3, "not_found"),
        (("submit", "fail", "-p", "message=1", "-p", "extra=1"), 2, "usage"),
        (("cancel", "1"), 4, "conflict"),
    ],
)
def test_json_failures_are_an_error_object_with_the_documented_exit_code(
    node: Node, failed: int, args: tuple[str, ...], code: int, kind: str
):
    # Given a failure the console expects (unknown task, bad params, a refused move)
    console(node, "watch", str(failed))
    # When a script meets it with --json
    done = console(node, "--json", *args)
    # Then stdout is a JSON error object naming it, and the exit code is the documented one
    assert done.returncode == code, done.stdout + done.stderr
    error = json.loads(done.stdout)["error"]
    assert (error["exit_code"], error["kind"]) == (code, kind)
    assert error["message"]
    assert done.stderr.startswith("error: ")


def test_an_unreachable_scheduler_is_an_error_object_with_exit_5(node: Node):
    # Given no scheduler at the URL
    argv = [PYTHON, "-m", "taskconsole", "--url", "http://127.0.0.1:9", "--json", "list"]
    # When a script lists tasks
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60)
    # Then the error object says unreachable, with exit code 5
    assert done.returncode == 5
    assert json.loads(done.stdout)["error"]["kind"] == "unreachable"
