"""Real server processes for tests: free loopback ports, start with a deadline, stop, kill -9.

Any test that needs a real process (a gunicorn-backed scheduler or worker, a CLI) starts it
with :func:`start`, which waits until a readiness URL answers, and fails with the process's
own log when it exits early or misses the deadline. Each process leads its own process
group, so :meth:`Server.kill` takes gunicorn's arbiter and its workers down together, the
way a crashed machine would.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
#: How long a process may take to answer its readiness URL.
STARTUP_DEADLINE_SECONDS = 30.0
PYTHON = sys.executable


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A started process, its log, and the URL it serves."""

    popen: subprocess.Popen[bytes]
    log_path: Path
    url: str

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.popen.pid, sig)

    def wait(self, timeout: float) -> int:
        """The exit code; fails with the log when the process is still running."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.url} still runs after {timeout} s\n{self.log()}") from None

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (graceful) and wait; kill -9 the group if it will not stop."""
        self.signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.url} ignored SIGTERM for {timeout} s\n{self.log()}"
            ) from None

    def kill(self) -> None:
        """kill -9 the whole process group: no handler runs, nothing is flushed."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)


def start(
    argv: Sequence[str],
    *,
    url: str,
    log_path: Path,
    ready_path: str = "/health",
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    deadline: float = STARTUP_DEADLINE_SECONDS,
) -> Server:
    """Start ``argv`` and wait until ``url + ready_path`` answers (any HTTP status)."""
    log_file = log_path.open("wb")
    popen = subprocess.Popen(
        list(argv),
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        start_new_session=True,
    )
    log_file.close()
    server = Server(popen, log_path, url)
    try:
        wait_until(lambda: _answers(url + ready_path) or _exited(server), deadline, what=url)
    except AssertionError:
        server.kill()
        raise AssertionError(f"{url} did not come up within {deadline} s\n{server.log()}") from None
    if not server.alive():
        raise AssertionError(f"{argv[0]} exited with {popen.returncode}\n{server.log()}")
    return server


@contextlib.contextmanager
def running(argv: Sequence[str], **kwargs: object) -> Iterator[Server]:
    """:func:`start` for a ``with`` block; the process is killed on the way out if still up."""
    server = start(argv, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        if server.alive():
            server.kill()


def wait_until(
    check: Callable[[], T], timeout: float, *, interval: float = 0.05, what: str = "condition"
) -> T:
    """Poll ``check`` until it returns something true; return it (fail after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not true after {timeout} s")
        time.sleep(interval)


def call(method: str, url: str, body: object = None, token: str | None = None) -> Any:
    """One JSON request as any HTTP client would send it (a bearer token if given)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


def pid_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _exited(server: Server) -> bool:
    return not server.alive()
