"""The console starts fast: a command that speaks HTTP imports neither SQLAlchemy nor any
of the scheduler's or the worker's code (only ``taskconsole db`` needs them), each a good
part of a second to import. Each command runs in a process of its own, as an operator's."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.processes import PYTHON
from tests.taskconsole.conftest import Console, Scheduler
from tests.taskscheduler.api.harness import TOKENS

#: What the HTTP commands must not import.
HEAVY = ("sqlalchemy", "alembic", "taskscheduler", "taskworker", "pydantic", "jsonschema")
_RUN = """
import json, sys
from taskconsole.cli import main
try:
    main(sys.argv[1:], prog_name="taskconsole")
finally:
    heavy = [name for name in json.loads(sys.stdin.read()) if name in sys.modules]
    print(json.dumps(heavy), file=sys.stderr)
"""


def imported(*args: str) -> tuple[int, list[str]]:
    """The exit code of ``taskconsole ARGS`` and which of :data:`HEAVY` it imported."""
    done = subprocess.run(
        [PYTHON, "-c", _RUN, *args],
        check=False,
        input=json.dumps(HEAVY),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "command",
    [("--help",), ("list",), ("show", "{task}"), ("watch", "{task}"), ("workers",), ("types",)],
)
def test_an_http_command_imports_no_database_code(
    command: tuple[str, ...], scheduler: Scheduler, console: Console
):
    # Given a task on a running scheduler
    task = console.submit()["task_id"]
    console("cancel", str(task))
    args = ["--url", scheduler.url, "--token", TOKENS["viewer"]]
    # When a console process runs the command
    code, heavy = imported(*args, *(part.format(task=task) for part in command))
    # Then it answered without importing SQLAlchemy or the scheduler's code
    assert code in (0, 1)  # watch of a cancelled task exits 1
    assert heavy == []


def test_the_db_command_still_finds_the_database_code(tmp_path):
    # Given the one command that touches the database
    # When it runs in a console process
    code, heavy = imported("db", "current", "--db-url", f"sqlite:///{tmp_path / 'x.db'}")
    # Then it imported what it needs (the check above can see an import)
    assert code == 0
    assert {"sqlalchemy", "taskscheduler"} <= set(heavy)
