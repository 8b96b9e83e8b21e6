"""The node calls only addresses it was told to trust: ``create_info.http_url`` must be a
registered worker's URL, callbacks go only to hosts of ``TASK_CALLBACK_ALLOW`` and are signed
with ``TASK_CALLBACK_SECRET``; replayed against a real node and a real worker."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from taskscheduler.db import migrate
from taskworker import signing
from taskworker.errors import Unauthorized
from tests.processes import PYTHON, Server, call, free_port, running, wait_until
from tests.taskscheduler.api.harness import build_api

WORKER_SECRET = "security-worker-secret-0123456789"
CALLBACK_SECRET = "security-callback-secret-0123456789"


class Listener:
    """A plain HTTP server on this machine, not a worker: it records every request it gets
    (request target, headers, body) and answers 200."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                listener.requests.append((self.path, dict(self.headers), self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = _record

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"


@pytest.fixture
def listener() -> Iterator[Listener]:
    found = Listener()
    threading.Thread(target=found.server.serve_forever, daemon=True).start()
    yield found
    found.server.shutdown()
    found.server.server_close()


@dataclass
class Site:
    node: Server
    worker: Server


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """``taskscheduler serve`` allowing callbacks to 127.0.0.1 only, and one real worker."""
    tmp = tmp_path_factory.mktemp("site")
    db_url = f"sqlite:///{tmp / 'tasks.db'}"
    migrate.upgrade(db_url)
    with ExitStack() as stack:
        port = free_port()
        argv = [PYTHON, "-m", "taskscheduler", "serve", "--bind", f"127.0.0.1:{port}"]
        env = {
            "TASK_DB_URL": db_url,
            "TASK_WORKER_SECRET": WORKER_SECRET,
            "TASK_CALLBACK_ALLOW": "127.0.0.1",
            "TASK_CALLBACK_SECRET": CALLBACK_SECRET,
            "TASK_NODE_NAME": "node0",
        }
        node = stack.enter_context(
            running(
                [*argv, "--workers", "1"],
                url=f"http://127.0.0.1:{port}",
                log_path=tmp / "node.log",
                env=env,
            )
        )
        port = free_port()
        argv = [PYTHON, "-m", "taskworker", "serve", "--bind", f"127.0.0.1:{port}"]
        argv += ["--scheduler", node.url, "--name", "w1"]
        worker = stack.enter_context(
            running(
                argv,
                url=f"http://127.0.0.1:{port}",
                log_path=tmp / "worker.log",
                env={"TASK_WORKER_SECRET": WORKER_SECRET, "TASK_WORKER_HEARTBEAT_SECONDS": "1"},
            )
        )
        wait_until(lambda: call("GET", f"{node.url}/v1/workers"), 30, what="worker registered")
        yield Site(node, worker)


def post(url: str, body: object) -> tuple[int, dict[str, Any]]:
    """POST JSON; the status and the JSON answer, whatever the status."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def finished(site: Site, task_id: int) -> bool:
    task = call("GET", f"{site.node.url}/v1/task/noop?task_id={task_id}")
    return bool(task["task_status"] == "finish")


def test_an_http_url_that_is_no_worker_is_refused_and_never_called(site, listener):
    # Given a plain HTTP server on the node's machine that is not a worker
    pinned = {"create_info": {"http_url": listener.url}}
    # When a task, a batch item, a topology node and a trigger template pin tasks to it
    answers = [
        post(f"{site.node.url}/v1/task/noop", pinned),
        post(
            f"{site.node.url}/v1/tasks",
            {"tasks": [{"create_info": {"task_type": "noop", "http_url": listener.url}}]},
        ),
        post(
            f"{site.node.url}/v1/topology",
            {"name": "t", "nodes": [{"key": "a", "task_type": "noop", **pinned}]},
        ),
        post(
            f"{site.node.url}/v1/triggers",
            {
                "name": "every-minute",
                "cron": "* * * * *",
                "template": {"create_info": {"task_type": "noop", "http_url": listener.url}},
            },
        ),
    ]
    # Then each is refused with 400 naming the field
    assert [(status, answer.get("field")) for status, answer in answers] == [
        (400, "create_info.http_url"),
        (400, "tasks[0].create_info.http_url"),
        (400, "nodes[0].create_info.http_url"),
        (400, "template.create_info.http_url"),
    ]
    assert "registered worker" in answers[0][1]["description"]
    # And once a task pinned to the real worker has run, the listener was still never called
    status, task = post(
        f"{site.node.url}/v1/task/noop", {"create_info": {"http_url": site.worker.url}}
    )
    assert status == 201
    wait_until(lambda: finished(site, task["task_id"]), 30, what="the pinned task finished")
    assert listener.requests == []


@pytest.mark.parametrize(
    "where",
    [
        "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
        "http://localhost:{port}/done",  # the same machine by a name the node was not told
    ],
)
def test_a_callback_to_a_host_outside_the_allow_list_is_refused_at_create(site, listener, where):
    # Given a node that allows callbacks to 127.0.0.1 alone
    callback_url = where.format(port=listener.port)
    # When a task names a callback to another host
    status, answer = post(
        f"{site.node.url}/v1/task/noop", {"create_info": {"callback_url": callback_url}}
    )
    # Then it is refused with 400 naming the field, and nothing was called
    assert (status, answer["field"]) == (400, "create_info.callback_url")
    assert "is not allowed by TASK_CALLBACK_ALLOW" in answer["description"]
    assert listener.requests == []


def test_without_an_allow_list_every_callback_is_refused_saying_what_to_set(
    sqlite_url: str, sqlite_engine: Engine
):
    # Given a node with no TASK_CALLBACK_ALLOW
    api = build_api(sqlite_url, sqlite_engine)
    # When a task names a callback, even to the loopback address
    body = {"create_info": {"callback_url": "http://127.0.0.1:9/done"}, "params": {"seconds": 1}}
    result = api.call("POST", "/v1/task/sleep", json=body)
    # Then it is refused with 400 naming the field and the setting to set
    assert (result.status_code, result.json["field"]) == (400, "create_info.callback_url")
    assert "set TASK_CALLBACK_ALLOW" in result.json["description"]


def test_an_allowed_callback_arrives_signed_with_the_callback_secret(site, listener):
    # Given a task with a callback to an allowed host
    body = {"create_info": {"callback_url": f"{listener.url}/hooks/done?source=tasks"}}
    status, task = post(f"{site.node.url}/v1/task/noop", body)
    assert status == 201
    # When it finishes and the node calls back
    wait_until(lambda: listener.requests, 30, what="the callback arrived")
    ((target, headers, payload),) = listener.requests
    # Then the callback carries the final task, and its signature verifies with the callback
    # secret over what the receiver got (and with no other key, nor over another body)
    assert target == "/hooks/done?source=tasks"
    assert json.loads(payload)["task_id"] == task["task_id"]
    assert json.loads(payload)["task_status"] == "finish"
    signing.verify(CALLBACK_SECRET, "POST", target, payload, headers)
    with pytest.raises(Unauthorized):
        signing.verify(WORKER_SECRET, "POST", target, payload, headers)
    with pytest.raises(Unauthorized):
        signing.verify(CALLBACK_SECRET, "POST", target, payload + b" ", headers)


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        (None, "no callback secret"),
        ("short", "shorter than 16 bytes"),
        (WORKER_SECRET, "the worker secret"),
    ],
)
def test_serve_with_an_allow_list_but_no_proper_callback_secret_exits_2_before_listening(
    tmp_path: Path, secret: str | None, why: str
):
    # Given callbacks allowed to a host, and a callback secret that will not do
    db_url = f"sqlite:///{tmp_path / 'tasks.db'}"
    migrate.upgrade(db_url)
    port = free_port()
    env = {
        "TASK_DB_URL": db_url,
        "TASK_WORKER_SECRET": WORKER_SECRET,
        "TASK_CALLBACK_ALLOW": "hooks.example.com",
        **({"TASK_CALLBACK_SECRET": secret} if secret is not None else {}),
    }
    # When the node is started
    argv = [PYTHON, "-m", "taskscheduler", "serve", "--bind", f"127.0.0.1:{port}"]
    done = subprocess.run(
        argv, env={**os.environ, **env}, capture_output=True, timeout=60, check=False
    )
    # Then it exits 2 naming the setting, before its API ever listened
    assert done.returncode == 2, why
    assert b"TASK_CALLBACK_SECRET" in done.stderr
    assert b"Listening at" not in done.stdout + done.stderr
