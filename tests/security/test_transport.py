"""The transport, attacked as it was found open: a web page driving an open API (CSRF, DNS
rebinding), bodies that are not JSON or nest too deep, invented method names, starts without
a secret or on a public bind, a wrong notify token in open mode, a header that overflows;
each replayed against real ``taskscheduler serve`` and ``taskworker serve`` processes."""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import string
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from taskscheduler.db import migrate
from taskworker import signing
from tests.processes import PYTHON, Server, call, free_port, running, wait_until

SECRET = "transport-worker-secret-0123456789"
ADMIN = "transport-admin-token"
VIEWER = "transport-viewer-token"
#: What the API's own clients send with a body, and what a page elsewhere adds to its posts.
JSON = {"Content-Type": "application/json"}
EVIL = {"Origin": "http://evil.example"}


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


def send(base: str, method: str, path: str, body: bytes | None = None, **headers: str) -> Answer:
    """One request with exactly these headers (``Host`` too when given), as a browser or a
    hand-made client would send it; ``Content_Type`` stands for ``Content-Type``."""
    parts = urlsplit(base)
    named = {name.replace("_", "-"): value for name, value in headers.items()}
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=named)
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


def nested(depth: int) -> bytes:
    """A create body whose params hold arrays down to ``depth`` levels in all."""
    inner = "[" * (depth - 2) + "]" * (depth - 2)
    return f'{{"params": {{"argv": {inner}}}}}'.encode()


@dataclass
class Site:
    open_node: Server
    token_node: Server
    worker: Server


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """An open node (no tokens, loopback) with a real worker and the shipped plugins, and a
    node with tokens on the same database."""
    home = tmp_path_factory.mktemp("transport")
    db_url = f"sqlite:///{home / 'tasks.db'}"
    migrate.upgrade(db_url)
    with ExitStack() as stack:
        nodes = []
        for name, tokens in (("open", ""), ("tokens", f"{ADMIN}:admin,{VIEWER}:viewer")):
            port = free_port()
            argv = [PYTHON, "-m", "taskscheduler", "serve", "--bind", f"127.0.0.1:{port}"]
            env = {
                "TASK_DB_URL": db_url,
                "TASK_WORKER_SECRET": SECRET,
                "TASK_API_TOKENS": tokens,
                "TASK_NODE_NAME": name,
            }
            nodes.append(
                stack.enter_context(
                    running(
                        [*argv, "--workers", "1"],
                        url=f"http://127.0.0.1:{port}",
                        log_path=home / f"{name}.log",
                        env=env,
                    )
                )
            )
        port = free_port()
        argv = [PYTHON, "-m", "taskworker", "serve", "--bind", f"127.0.0.1:{port}"]
        argv += ["--scheduler", nodes[0].url, "--name", "transport-worker"]
        worker = stack.enter_context(
            running(
                argv,
                url=f"http://127.0.0.1:{port}",
                log_path=home / "worker.log",
                env={"TASK_WORKER_SECRET": SECRET, "TASK_WORKER_HEARTBEAT_SECONDS": "1"},
            )
        )
        wait_until(lambda: call("GET", f"{nodes[0].url}/v1/workers"), 30, what="registered")
        yield Site(nodes[0], nodes[1], worker)


def shell_body(marker: Path) -> bytes:
    return json.dumps({"params": {"argv": ["touch", str(marker)]}}).encode()


def test_a_web_page_cannot_start_a_shell_task_on_an_open_api(site: Site, tmp_path: Path):
    # Given an open API on loopback, and what a web page elsewhere can post to it: text/plain
    # needs no preflight, and the browser adds the page's Origin
    marker = tmp_path / "pwned"
    base, path = site.open_node.url, "/v1/task/shell"
    # When the page posts the command as text/plain with its Origin (the curl of the report)
    csrf = send(base, "POST", path, shell_body(marker), Content_Type="text/plain", **EVIL)
    # and as text/plain without an Origin, and as JSON with its Origin
    untyped = send(base, "POST", path, shell_body(marker), Content_Type="text/plain")
    foreign = send(base, "POST", path, shell_body(marker), **JSON, **EVIL)
    # Then the first and the last are refused as foreign (403), the second as not JSON (415)
    assert (csrf.status, untyped.status, foreign.status) == (403, 415, 403)
    assert "Origin" in csrf.json["description"]
    assert "application/json" in untyped.json["description"]
    # and nothing ran: the same command sent as the API's own client sends it does run
    own = send(base, "POST", path, shell_body(marker), **JSON)
    assert own.status == 201, own.raw
    wait_until(marker.exists, 30, what="the control task ran")
    marker.unlink()
    tasks = call("GET", f"{base}/v1/tasks?type=shell")["items"]
    assert [task["task_id"] for task in tasks] == [own.json["task_id"]]


def test_a_page_on_the_api_s_own_origin_is_answered(site: Site):
    # Given the API's own origin, as a page it served would send it
    base = site.open_node.url
    own_origin = f"http://127.0.0.1:{urlsplit(base).port}"
    # When it reads the tasks, and so does a client naming localhost
    answers = [
        send(base, "GET", "/v1/tasks", Origin=own_origin),
        send(base, "GET", "/v1/tasks", Host=f"localhost:{urlsplit(base).port}"),
    ]
    # Then both are answered
    assert [answer.status for answer in answers] == [200, 200]


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "10.0.0.1", ""])
def test_a_rebound_dns_name_gets_nothing_from_an_open_api(site: Site, host: str):
    # Given a page on a DNS name rebound to 127.0.0.1: same-origin to the browser, but the
    # browser sends its own name as Host
    # When it reads the tasks and posts a task
    read = send(site.open_node.url, "GET", "/v1/tasks", Host=host)
    body = json.dumps({"params": {"seconds": 0}}).encode()
    create = send(site.open_node.url, "POST", "/v1/task/sleep", body, Host=host, **JSON)
    # Then both are refused, naming the Host
    assert (read.status, create.status) == (403, 403)
    assert "Host" in read.json["description"]


def test_with_tokens_neither_host_nor_origin_is_in_the_way(site: Site):
    # Given a node with tokens (a browser never sends them on its own)
    # When a client behind a proxy names another Host and an Origin
    answer = send(
        site.token_node.url,
        "GET",
        "/v1/tasks",
        Host="scheduler.example",
        Origin="https://console.example",
        Authorization=f"Bearer {VIEWER}",
    )
    # Then the token decides, as before
    assert answer.status == 200


@pytest.mark.parametrize("depth", [65, 1000])
def test_json_nested_too_deep_is_a_400_naming_the_body(site: Site, depth: int):
    # Given a body whose arrays nest deeper than 64 levels
    body = nested(depth)
    # When it is posted as a task
    answer = send(site.open_node.url, "POST", "/v1/task/shell", body, **JSON)
    # Then it is a 400 naming the body, not an internal error
    assert answer.status == 400, answer.raw
    assert answer.json["field"] == "body"
    assert "64" in answer.json["description"]


def test_json_nested_64_deep_passes_the_depth_check(site: Site):
    # Given a body nested exactly 64 levels
    answer = send(site.open_node.url, "POST", "/v1/task/shell", nested(64), **JSON)
    # Then it reaches the params' own checks (argv must hold strings), not the depth check
    assert answer.status == 400, answer.raw
    assert answer.json["field"] != "body"


def _metrics(site: Site) -> str:
    answer = send(site.token_node.url, "GET", "/metrics", Authorization=f"Bearer {VIEWER}")
    assert answer.status == 200
    return answer.raw.decode()


def test_invented_method_names_are_405_and_never_grow_the_metrics(site: Site):
    # Given a node with tokens whose metrics have seen a refused method and a scrape once
    rng = random.Random(7)

    def invented() -> str:
        return "X" + "".join(rng.choices(string.ascii_uppercase, k=11))

    assert send(site.token_node.url, invented(), "/v1/tasks").status == 405
    _metrics(site)
    before = _metrics(site)
    # When a client sends 200 requests with invented method names, without credentials
    names = [invented() for _ in range(200)]
    answers = [send(site.token_node.url, name, "/v1/tasks") for name in names]
    after = _metrics(site)
    # Then each is a 405 naming what is served, not a 401
    assert {answer.status for answer in answers} == {405}
    assert set(answers[0].headers["Allow"].split(", ")) == {"GET", "POST"}
    # and the metrics count them as "other": no name became a label, no series was added
    assert not any(name in after for name in names)
    assert 'method="other"' in after
    # (other series, such as the leases the loops take meanwhile, may appear on their own)
    assert _labelled_by_method(after) == _labelled_by_method(before)


def _labelled_by_method(metrics: str) -> set[str]:
    """The series labelled by method (their names and labels, without their values)."""
    return {line.rsplit(" ", 1)[0] for line in metrics.splitlines() if 'method="' in line}


def test_a_known_method_a_resource_does_not_serve_is_405_before_credentials(site: Site):
    # Given no credentials at all
    # When a client patches the types, which are only read
    answer = send(site.token_node.url, "PATCH", "/v1/types")
    # Then it is told the method is wrong (405, Allow: GET), not that a token is missing
    assert answer.status == 405
    assert answer.headers["Allow"] == "GET"


def _refusal(argv: list[str], env: dict[str, str], home: Path) -> tuple[int, str]:
    """Run a start that must be refused; its exit code and its whole output."""
    log = home / "refused.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
            start_new_session=True,
        )
        try:
            code = process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
            raise AssertionError(f"still running after 60 s\n{log.read_text()}") from None
    return code, log.read_text()


def _lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


@pytest.mark.parametrize("secret", [None, "", "tiny-key", "fifteen-bytes!!"])
@pytest.mark.parametrize("program", ["taskscheduler", "taskworker"])
def test_serve_refuses_to_start_without_a_secret_of_16_bytes(
    tmp_path: Path, program: str, secret: str | None
):
    # Given a migrated database and a TASK_WORKER_SECRET missing, empty or too short
    db_url = f"sqlite:///{tmp_path / 'tasks.db'}"
    migrate.upgrade(db_url)
    env = {"TASK_DB_URL": db_url}
    if secret is not None:
        env["TASK_WORKER_SECRET"] = secret
    port = free_port()
    # When serve starts
    code, output = _refusal(
        [PYTHON, "-m", program, "serve", "--bind", f"127.0.0.1:{port}"], env, tmp_path
    )
    # Then it exits 2 with one line naming the variable, before anything listened
    assert code == 2, output
    assert len(_lines(output)) == 1, output
    assert "TASK_WORKER_SECRET" in output and "16 bytes" in output
    assert "Listening" not in output and "Traceback" not in output
    # and the line never repeats the secret
    assert not secret or secret not in output


def test_a_secret_of_16_bytes_is_enough_to_serve(tmp_path: Path):
    # Given a secret of exactly 16 bytes
    db_url = f"sqlite:///{tmp_path / 'tasks.db'}"
    migrate.upgrade(db_url)
    port = free_port()
    argv = [PYTHON, "-m", "taskscheduler", "serve", "--bind", f"127.0.0.1:{port}"]
    env = {"TASK_DB_URL": db_url, "TASK_WORKER_SECRET": "sixteen-bytes-ok"}
    # When serve starts, then it answers
    with running(
        [*argv, "--workers", "1"],
        url=f"http://127.0.0.1:{port}",
        log_path=tmp_path / "log",
        env=env,
    ) as node:
        assert send(node.url, "GET", "/health").status in (200, 503)


@pytest.mark.parametrize("command", ["serve", "standalone"])
def test_a_public_bind_without_tokens_is_refused_before_anything_listens(
    tmp_path: Path, command: str
):
    # Given no tokens and a bind on every interface
    db_url = f"sqlite:///{tmp_path / 'tasks.db'}"
    migrate.upgrade(db_url)
    env = {"TASK_DB_URL": db_url, "TASK_WORKER_SECRET": SECRET}
    port = free_port()
    # When the node starts
    code, output = _refusal(
        [PYTHON, "-m", "taskscheduler", command, "--bind", f"0.0.0.0:{port}"], env, tmp_path
    )
    # Then it exits 2 with one line naming TASK_API_TOKENS: no gunicorn, no loops, no trace
    assert code == 2, output
    assert len(_lines(output)) == 1, output
    assert "TASK_API_TOKENS" in output
    assert "Listening" not in output and "Traceback" not in output


def test_open_mode_refuses_a_wrong_notify_token(site: Site):
    # Given an asynchronous task on the open node, running on the worker, and its token
    base = site.open_node.url
    created = call("POST", f"{base}/v1/task/external", {"params": {"note": "backup"}})
    task_id, token = created["task_id"], created["notify_token"]
    assert token
    wait_until(
        lambda: (
            call("GET", f"{base}/v1/task/external?task_id={task_id}")["task_status"] == "running"
        ),
        30,
        what="running",
    )
    notify = f"/v1/task/external?task_id={task_id}&action=notify"
    body = json.dumps({"success": True, "result": {"forged": True}}).encode()
    # When an outsider presents a wrong token, as ?token= and as a bearer token
    by_query = send(base, "PUT", f"{notify}&token=wrong", body, **JSON)
    by_bearer = send(base, "PUT", notify, body, **JSON, Authorization="Bearer wrong")
    # Then both are 401 and the task still runs
    assert (by_query.status, by_bearer.status) == (401, 401)
    assert call("GET", f"{base}/v1/task/external?task_id={task_id}")["task_status"] == "running"
    # and the task's own token is accepted
    own = send(base, "PUT", f"{notify}&token={token}", body, **JSON)
    assert own.status == 200, own.raw


def _forged(timestamp: str) -> dict[str, str]:
    return {
        signing.TIMESTAMP_HEADER: timestamp,
        signing.SIGNATURE_HEADER: "0" * 64,
        signing.WORKER_HEADER: "transport-worker",
    }


@pytest.mark.parametrize("timestamp", ["9" * 400, "-5", "1e9", "1_700_000_000"])
def test_a_signature_header_out_of_shape_is_a_401_on_both_sides(site: Site, timestamp: str):
    # Given signature headers with a timestamp that is not 1 to 12 digits
    headers = _forged(timestamp)
    # When they are sent to the scheduler (a worker's heartbeat) and to the worker itself
    node = send(site.open_node.url, "PUT", "/v1/workers/transport-worker/heartbeat", **headers)
    worker = send(site.worker.url, "GET", "/v1/task/noop?task_id=1", **headers)
    # Then both refuse it as unsigned, not with an internal error
    assert (node.status, worker.status) == (401, 401)
    assert signing.TIMESTAMP_HEADER in node.json["description"]


def test_a_signed_call_to_the_worker_must_be_json_within_depth(site: Site):
    # Given calls signed with the right secret, as only the scheduler can make them
    def signed(body: bytes, content_type: str) -> Answer:
        headers = signing.sign(SECRET, "POST", "/v1/task/noop", body, worker="transport")
        headers["Content-Type"] = content_type
        return send(site.worker.url, "POST", "/v1/task/noop", body, **headers)

    # When one carries text/plain and another nests 1000 levels
    plain = signed(b'{"params": {}, "dispatch": {"task_id": 9, "attempt": 1}}', "text/plain")
    deep = signed(b"[" * 1000 + b"]" * 1000, "application/json")
    # Then the worker refuses both: 415 and a 400 naming the body
    assert plain.status == 415
    assert deep.status == 400 and deep.json["field"] == "body"
