"""A plugin's child process gets a minimal environment, never the worker's own."""

from __future__ import annotations

import pytest

from plugins.shell import Shell
from taskworker.environment import minimal_environment
from taskworker.testing import TaskEnvironment

WORKER_SECRETS = {
    "TASK_WORKER_SECRET": "worker-secret-0123456789",
    "TASK_API_TOKENS": "t0ken:admin",
    "TASK_CRED_OPS_PASSWORD": "hunter2",
    "AWS_SECRET_ACCESS_KEY": "not-for-children",
}


@pytest.fixture
def worker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's environment as in production: its secrets beside the ordinary variables."""
    for name, value in WORKER_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PATH", "/opt/tools/bin:/usr/bin:/bin")
    monkeypatch.setenv("HOME", "/home/worker")
    monkeypatch.setenv("LANG", "de_DE.UTF-8")


def test_the_minimal_environment_is_path_home_and_lang_of_the_worker(worker_env: None):
    # Given a worker with secrets in its environment
    # When a plugin asks for a child's environment with one variable of its own
    env = minimal_environment({"GREETING": "hello"})
    # Then the child gets the worker's PATH, HOME and LANG and that variable, nothing else
    assert env == {
        "PATH": "/opt/tools/bin:/usr/bin:/bin",
        "HOME": "/home/worker",
        "LANG": "de_DE.UTF-8",
        "GREETING": "hello",
    }


def test_unset_variables_get_safe_defaults(monkeypatch: pytest.MonkeyPatch):
    # Given a worker started without PATH, HOME or LANG
    for name in ("PATH", "HOME", "LANG"):
        monkeypatch.delenv(name, raising=False)
    # When a child's environment is made
    env = minimal_environment()
    # Then each of the three has a usable value
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert env["LANG"] == "C.UTF-8"
    assert env["HOME"].startswith("/")
    assert set(env) == {"PATH", "HOME", "LANG"}


def test_a_shell_command_prints_only_the_minimal_environment(worker_env: None):
    # Given the shell plugin on a worker holding secrets
    # When a command prints its whole environment
    result = TaskEnvironment(Shell, {"argv": ["env"], "env": {"GREETING": "hello"}}).run_step()
    # Then it saw none of the worker's secrets
    lines = result["stdout_tail"].splitlines()
    assert sorted(lines) == [
        "GREETING=hello",
        "HOME=/home/worker",
        "LANG=de_DE.UTF-8",
        "PATH=/opt/tools/bin:/usr/bin:/bin",
    ]
    for secret in WORKER_SECRETS.values():
        assert secret not in result["stdout_tail"]


def test_shell_declares_itself_privileged():
    assert Shell.privileged is True
    assert Shell.describe()["privileged"] is True
