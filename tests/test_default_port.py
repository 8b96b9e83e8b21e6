"""One default port everywhere: where a node listens unless told (``serve``, ``standalone``),
where a worker and the console look for it unless told, and what the docs say of each."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from taskconsole.cli import DEFAULT_URL
from taskscheduler.cli import main as scheduler_cli
from taskscheduler.settings import Settings
from taskworker.cli import main as worker_cli
from taskworker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[1]
PORT = "8080"


def _port(address: str) -> str:
    return address.rstrip("/").rsplit(":", 1)[1]


def test_the_node_the_worker_and_the_console_default_to_one_port():
    # Given the defaults of each program
    # When their ports are read
    ports = {
        "TASK_BIND": _port(Settings().bind),
        "TASK_SCHEDULER_URL": _port(WorkerSettings().scheduler_url),
        "taskconsole --url": _port(DEFAULT_URL),
    }
    # Then they are the same
    assert ports == dict.fromkeys(ports, PORT)


def test_the_help_of_each_command_names_that_port():
    runner = CliRunner()
    for cli, args in (
        (scheduler_cli, ["serve", "--help"]),
        (scheduler_cli, ["standalone", "--help"]),
        (worker_cli, ["serve", "--help"]),
    ):
        shown = runner.invoke(cli, args).output
        assert f"127.0.0.1:{PORT}" in " ".join(shown.split()), args


def test_the_docs_give_that_port_as_every_default():
    # Given the documents that state a default address of the scheduler
    docs = {
        "README.md": ROOT / "README.md",
        "docs/cli.md": ROOT / "docs" / "cli.md",
        "docs/operating.md": ROOT / "docs" / "operating.md",
        "docs/worker-contract.md": ROOT / "docs" / "worker-contract.md",
    }
    for name, path in docs.items():
        text = path.read_text()
        # When the scheduler addresses they give are read (a worker's own bind is 8100)
        ports = set(re.findall(r"(?:127\.0\.0\.1|0\.0\.0\.0|scheduler-lb):(\d{4})\b", text))
        # Then the scheduler's port is the one default
        assert ports - {"8100"} <= {PORT}, (name, ports)
    assert "8080" in (ROOT / "Makefile").read_text()
