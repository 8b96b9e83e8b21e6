"""The README's quick start, followed literally on a fresh copy with a fresh virtualenv."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from pathlib import Path

import pytest

from tests.processes import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


def shell_blocks() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)
    return [
        [line.split("  #")[0].strip() for line in b.splitlines() if line.strip()] for b in blocks
    ]


@pytest.mark.timeout(600)
def test_the_readme_quick_start_works_as_written(tmp_path):
    run_block, console_block = shell_blocks()[0], shell_blocks()[1]
    assert run_block == ["make run"]
    # Given a fresh copy of the project (tracked files only, no virtualenv)
    copy = tmp_path / "copy"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(copy)], check=True)
    for tracked in subprocess.run(
        ["git", "-C", str(ROOT), "diff", "--name-only"], capture_output=True, text=True, check=True
    ).stdout.split():
        (copy / tracked).write_bytes((ROOT / tracked).read_bytes())  # uncommitted edits too
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASK_")}
    env["BIND"] = f"127.0.0.1:{port}"
    log = (tmp_path / "run.log").open("wb")
    # When the first command runs (on another port than the README's, as BIND allows)
    node = subprocess.Popen(
        shlex.split(run_block[0]),
        cwd=copy,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        health = f"http://127.0.0.1:{port}/health"
        wait_until(lambda: _answers(health) or node.poll() is not None, 420, what="make run serves")
        assert node.poll() is None, (tmp_path / "run.log").read_text()
        # Then the README's console commands work against it, with their promised exit codes
        env["TASK_URL"] = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: _console(copy, env, ["types", "--json"]).stdout.count("sleep") > 0,
            60,
            what="the worker registered",
        )
        for line in console_block:
            argv = shlex.split(line)
            done = _console(copy, env, argv[1:])
            expected = 1 if "fail" in argv else 0
            assert done.returncode == expected, (line, done.stdout, done.stderr)
    finally:
        os.killpg(node.pid, signal.SIGTERM)
        node.wait(60)
        log.close()


def _console(copy: Path, env: dict[str, str], args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(copy / ".venv/bin/taskconsole"), *args],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False
