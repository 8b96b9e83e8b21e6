"""The whole API fuzzed against its own OpenAPI document, on a real node, in both modes.

schemathesis reads ``GET /openapi.json`` from a running ``taskscheduler standalone`` (API
under gunicorn, the loops, a worker with the shipped plugins) and sends it what the document
allows and what it forbids, with every check it has: no answer may be a server error, every
answer (errors included) must match the document (status, media type, schema, headers), data
the document forbids must be refused, an unknown method is 405, and with tokens a request
without one is refused. Twice, as the node is deployed: with tokens on MariaDB, and open (no
tokens, the document then requires none) on its embedded SQLite. Each run is bounded in time.

What the document cannot say is configured in ``schemathesis.toml`` beside this module,
with the reason for each line.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from taskscheduler.db import migrate
from tests import services
from tests.processes import PYTHON, Server, free_port, running, wait_until

ADMIN = "fuzz-admin-token-4d9e2a"
SECRET = "a-worker-secret-of-32-characters"
CONFIG = Path(__file__).with_name("schemathesis.toml")
#: The time budget of one schemathesis run (its phases repeat until it is spent).
FUZZ_SECONDS = 60


@pytest.fixture(params=["tokens", "open"])
def node(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, str | None, Server]]:
    """A standalone node with tokens (an admin's) on MariaDB, or open on SQLite; its URL and
    the token to use."""
    if request.param == "tokens":
        db_url = services.create_mysql_database()
        request.addfinalizer(lambda: services.drop_mysql_database(db_url))
    else:
        db_url = f"sqlite:///{tmp_path / 'tasks.db'}"
    migrate.upgrade(db_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    token = ADMIN if request.param == "tokens" else None
    env = {"TASK_DB_URL": db_url, "TASK_WORKER_SECRET": SECRET}
    if token:
        env["TASK_API_TOKENS"] = f"{token}:admin"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    argv = [PYTHON, "-m", "taskscheduler", "standalone", "--bind", f"127.0.0.1:{port}"]
    with running(argv, url=base, log_path=tmp_path / "node.log", cwd=tmp_path, env=env) as proc:
        wait_until(
            lambda: (
                "noop"
                in {t["task_type"] for t in httpx.get(f"{base}/v1/types", headers=headers).json()}
            ),
            30,
            what="the built-in worker registered",
        )
        yield base, token, proc
        assert proc.alive(), proc.log()


@pytest.mark.timeout(FUZZ_SECONDS * 4)
def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_document(
    node: tuple[str, str | None, Server], tmp_path: Path
) -> None:
    # Given a running node and the document it serves
    base, token, server = node
    document = httpx.get(f"{base}/openapi.json", timeout=5).json()
    assert document["openapi"] == "3.1.0"

    # When schemathesis runs every check over every operation for about a minute
    argv = [
        PYTHON,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        f"{base}/openapi.json",
        "--checks",
        "all",
        "--max-time",
        str(FUZZ_SECONDS),
        "--workers",
        "1",
        "--seed",
        "20261205",
        "--request-timeout",
        "70",
    ]
    if token:
        argv += ["--header", f"Authorization: Bearer {token}"]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=FUZZ_SECONDS * 3, check=False, cwd=tmp_path
    )

    # Then it found nothing: no 5xx, no answer the document does not describe
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-20_000:]
    ran = re.search(r"(\d+) generated, \1 passed", output)
    assert ran is not None and int(ran.group(1)) > 1000, output[-5_000:]
    # ...and nothing it sent broke the node's loops behind the API either
    assert "Traceback" not in server.log(), server.log()[-20_000:]
