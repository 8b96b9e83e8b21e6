"""Every failure the console expects is one line on stderr and an exit code, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from taskconsole.cli import main
from tests.processes import free_port
from tests.taskconsole.conftest import Console
from tests.taskscheduler.api.harness import TOKENS


def one_line_error(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]


def test_a_scheduler_nobody_answers_at_exits_5() -> None:
    # Given a loopback port nothing listens on
    url = f"http://127.0.0.1:{free_port()}"

    # When any command talks to it
    result = CliRunner().invoke(main, ["--url", url, "list"])

    # Then one line says the scheduler is unreachable, with exit code 5
    assert result.exit_code == 5
    assert "unreachable" in one_line_error(result)
    assert url in result.stderr


def test_a_missing_or_unknown_token_exits_2_asking_to_check_it(console: Console) -> None:
    missing = console("list", role=None)
    unknown = console("--token", "not-a-token", "list", role=None)

    for result in (missing, unknown):
        assert result.exit_code == 2
        assert "--token" in one_line_error(result)


def test_a_role_too_weak_for_the_action_exits_2_and_changes_nothing(console: Console) -> None:
    # Given a task waiting in init
    task_id = str(console.submit()["task_id"])

    # When a viewer tries to pause it
    result = console("pause", task_id, role="viewer")

    # Then it is refused as forbidden and the task did not move
    assert result.exit_code == 2
    assert "forbidden" in one_line_error(result)
    assert console.json("show", task_id)["task_status"] == "init"


def test_url_and_token_come_from_the_environment(console: Console) -> None:
    # Given no --url and no --token, only TASK_URL and TASK_TOKEN
    env = {"TASK_URL": console.url, "TASK_TOKEN": TOKENS["viewer"]}

    # When the operator lists workers
    result = CliRunner().invoke(main, ["--json", "workers"], env=env)

    # Then the scheduler named by the environment answered
    assert result.exit_code == 0, result.output
    assert [w["name"] for w in json.loads(result.stdout)] == ["w1"]


def test_json_may_follow_the_command_as_well_as_precede_it(console: Console) -> None:
    before = console("--json", "types", role="viewer")
    after = console("types", "--json", role="viewer")

    assert json.loads(before.stdout) == json.loads(after.stdout)


def test_a_zero_timeout_is_a_usage_error(console: Console) -> None:
    result = console("--timeout", "0", "list")

    assert result.exit_code == 2


def test_a_definition_file_that_is_not_json_is_a_usage_error(
    console: Console, tmp_path: Path
) -> None:
    broken = tmp_path / "dag.json"
    broken.write_text("nodes: []")

    results = [console("topology", "submit", str(broken)), console("trigger", "add", str(broken))]

    for result in results:
        assert result.exit_code == 2
        assert "not valid JSON" in one_line_error(result)


def test_help_and_version_need_no_scheduler() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    assert CliRunner().invoke(main, ["--url", url, "--help"]).exit_code == 0
    assert CliRunner().invoke(main, ["--url", url, "trigger", "--help"]).exit_code == 0
    assert CliRunner().invoke(main, ["--version"]).exit_code == 0


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)


def test_the_installed_command_answers_and_fails_with_the_same_exit_codes(
    console: Console,
) -> None:
    # Given the console script installed next to this interpreter, and a task
    script = str(Path(sys.executable).parent / "taskconsole")
    task_id = str(console.submit()["task_id"])
    base = [script, "--url", console.url, "--token", TOKENS["viewer"]]

    # When it shows that task and one that does not exist
    found = run([*base, "--json", "show", task_id])
    missing = run([*base, "show", "987654"])

    # Then the first is the task as JSON, the second one line with exit code 3
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["task_id"] == int(task_id)
    assert missing.returncode == 3
    assert missing.stderr == "error: no task 987654\n"
