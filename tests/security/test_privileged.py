"""Running commands on a worker is an admin's alone, and a command never sees the worker's
secrets: the attack replayed against real processes.

One ``taskscheduler standalone`` (API under gunicorn, the loops, a worker with the shipped
plugins) with an operator and an admin token serves the module; the worker inherits the
node's environment (the tokens, the worker secret, the database URL), as it does in
production. Every test makes what it needs and compares only what it made.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from taskscheduler.db import migrate
from tests.processes import PYTHON, free_port, running, wait_until

OPERATOR = "operator-token-7f3a9c"
ADMIN = "admin-token-5b2e81"
SECRET = "a-worker-secret-of-32-characters"
HELLO = ["sh", "-c", "echo hello"]


class Node:
    """The running standalone and its secrets, spoken to as any HTTP client would."""

    def __init__(self, base: str, db_url: str) -> None:
        self.base = base
        self.db_url = db_url

    def request(
        self, method: str, path: str, body: Any = None, *, token: str = OPERATOR
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.request(method, f"{self.base}{path}", json=body, headers=headers, timeout=10)

    def task_ids(self) -> set[int]:
        listed = self.request("GET", "/v1/tasks?limit=500").json()
        return {task["task_id"] for task in listed["items"]}

    def trigger_names(self) -> set[str]:
        listed = self.request("GET", "/v1/triggers?limit=500").json()
        return {trigger["name"] for trigger in listed["items"]}

    def finished(self, task: dict[str, Any]) -> dict[str, Any]:
        path = f"/v1/task/{task['task_type']}?task_id={task['task_id']}"
        view: dict[str, Any] = wait_until(
            lambda: (v := self.request("GET", path).json())["task_status"] == "finish" and v,
            30,
            what=f"task {task['task_id']} finished",
        )
        return view

    def run_as_admin(self, params: dict[str, Any]) -> dict[str, Any]:
        """A shell task submitted by the admin, once it has finished."""
        created = self.request("POST", "/v1/task/shell", {"params": params}, token=ADMIN)
        assert created.status_code == 201, created.text
        return self.finished(created.json())


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    folder: Path = tmp_path_factory.mktemp("privileged")
    db_url = f"sqlite:///{folder / 'tasks.db'}"
    migrate.upgrade(db_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "TASK_DB_URL": db_url,
        "TASK_API_TOKENS": f"{OPERATOR}:operator,{ADMIN}:admin",
        "TASK_WORKER_SECRET": SECRET,
    }
    argv = [PYTHON, "-m", "taskscheduler", "standalone", "--bind", f"127.0.0.1:{port}"]
    with running(argv, url=base, log_path=folder / "node.log", cwd=folder, env=env):
        found = Node(base, db_url)
        wait_until(
            lambda: "shell" in {t["task_type"] for t in found.request("GET", "/v1/types").json()},
            30,
            what="the built-in worker registered",
        )
        yield found


def shell_node(key: str, **more: Any) -> dict[str, Any]:
    return {"key": key, "task_type": "shell", "params": {"argv": HELLO}, **more}


#: Every way an operator could have a shell task made: (method, path, body).
WAYS = {
    "create": ("POST", "/v1/task/shell", {"params": {"argv": ["id"]}}),
    "fan-out": (
        "POST",
        "/v1/task/shell",
        {"params": {"argv": ["id"]}, "create_info": {"targets": ["h1", "h2"]}},
    ),
    "batch": (
        "POST",
        "/v1/tasks",
        {
            "tasks": [
                {"create_info": {"task_type": "noop"}},
                {"create_info": {"task_type": "shell"}, "params": {"argv": ["id"]}},
            ]
        },
    ),
    "topology": ("POST", "/v1/topology", {"name": "root-shell", "nodes": [shell_node("a")]}),
    "nested topology": (
        "POST",
        "/v1/topology",
        {
            "name": "nested-root-shell",
            "nodes": [
                {"key": "first", "task_type": "noop"},
                {
                    "key": "inner",
                    "task_type": "topology",
                    "depends_on": ["first"],
                    "nodes": [{"key": "x", "task_type": "noop"}, shell_node("y")],
                },
            ],
        },
    ),
    "fan-out in a topology": (
        "POST",
        "/v1/topology",
        {"name": "fan-root-shell", "nodes": [shell_node("a", create_info={"targets": ["h1"]})]},
    ),
    "trigger template": (
        "POST",
        "/v1/triggers",
        {
            "name": "root-shell-every-minute",
            "interval_second": 60,
            "template": {"create_info": {"task_type": "shell"}, "params": {"argv": ["id"]}},
        },
    ),
}


@pytest.mark.parametrize("way", list(WAYS))
def test_an_operator_cannot_have_a_shell_task_made_by_any_way_and_nothing_is_stored(
    node: Node, way: str
):
    # Given a node where an operator holds a valid token
    method, path, body = WAYS[way]
    tasks, triggers = node.task_ids(), node.trigger_names()
    # When the operator asks for a shell command, directly or wrapped
    refused = node.request(method, path, body)
    # Then it is forbidden, naming the type, and no task or trigger appeared
    assert refused.status_code == 403, refused.text
    assert "'shell' is privileged" in refused.json()["description"]
    assert node.task_ids() == tasks
    assert node.trigger_names() == triggers


def test_an_operator_cannot_give_a_shell_task_new_params(node: Node):
    # Given a paused shell task an admin submitted
    body = {"params": {"argv": HELLO}, "process_arg": {"task_status": "pause"}}
    task = node.request("POST", "/v1/task/shell", body, token=ADMIN).json()
    url = f"/v1/task/shell?task_id={task['task_id']}"
    # When an operator changes its command to one of their own
    refused = node.request("PUT", f"{url}&action=change", {"params": {"argv": ["id"]}})
    # Then that is forbidden and the task keeps the admin's command
    assert refused.status_code == 403, refused.text
    assert node.request("GET", url).json()["params"] == {"argv": HELLO}
    # And the admin may change it
    changed = node.request("PUT", f"{url}&action=change", {"params": {"argv": ["id"]}}, token=ADMIN)
    assert changed.status_code == 200, changed.text
    node.request("PUT", f"{url}&action=cancel", token=ADMIN)


def test_an_admin_submits_a_shell_task_and_it_runs(node: Node):
    # Given the admin's token
    # When the admin submits a shell task
    view = node.run_as_admin({"argv": ["sh", "-c", "echo ran by the admin"]})
    # Then it was accepted and ran to success
    assert view["outcome"] == "succeeded", view
    assert view["result"]["stdout_tail"] == "ran by the admin\n"


def test_a_shell_command_sees_only_path_home_lang_and_its_own_env(node: Node):
    # Given a worker whose own environment holds the node's tokens, secret and database URL
    # When a shell task prints its whole environment
    view = node.run_as_admin({"argv": ["env"], "env": {"GREETING": "hello"}})
    # Then it saw PATH, HOME and LANG from the worker and the task's own variable, nothing else
    assert view["outcome"] == "succeeded", view
    lines = view["result"]["stdout_tail"].splitlines()
    names = {line.split("=", 1)[0] for line in lines}
    assert names == {"PATH", "HOME", "LANG", "GREETING"}, lines
    assert "GREETING=hello" in lines


def test_the_worker_secrets_do_not_reach_a_command_that_asks_for_them(node: Node):
    # Given the attack as it was replayed: a command echoing the worker's secrets
    asks = "echo tokens=$TASK_API_TOKENS secret=$TASK_WORKER_SECRET db=$TASK_DB_URL"
    # When it runs
    view = node.run_as_admin({"argv": ["sh", "-c", asks]})
    # Then every one of them is empty
    assert view["result"]["stdout_tail"] == "tokens= secret= db=\n"
    for secret in (OPERATOR, ADMIN, SECRET, node.db_url):
        assert secret not in view["result"]["stdout_tail"]


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"A=B": "x"}, "params.env"),
        ({"A\u0000B": "x"}, "params.env"),
        ({"": "x"}, "params.env"),
        ({"NAME": "x\u0000y"}, "params.env.NAME"),
    ],
)
def test_env_names_with_equals_or_nul_and_values_with_nul_are_400_naming_the_field(
    node: Node, env: dict[str, str], field: str
):
    # Given an environment the operating system could not pass to a process
    tasks = node.task_ids()
    # When the admin submits a shell task with it
    refused = node.request(
        "POST", "/v1/task/shell", {"params": {"argv": HELLO, "env": env}}, token=ADMIN
    )
    # Then it is refused before anything is stored, naming the field
    assert refused.status_code == 400, refused.text
    assert refused.json()["field"] == field
    assert node.task_ids() == tasks
