"""``mysql_provision``: a new MariaDB/MySQL server instance on this worker's machine.

It gets a data directory, a config file and a free port of its own under ``base_dir/name``,
is initialised with the server's own install tool, started, and waited for until it answers.
Its root password comes from a credentials reference. Rolling back stops the server (SIGTERM,
then SIGKILL) and removes its directory, so a failed topology leaves no process, port or file.

The install tool and the server get a minimal environment, never the worker's own: the
server outlives the step, and its ``/proc/<pid>/environ`` would show the worker's secrets
for as long as it runs.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pymysql

from plugins.mysql.connection import CREDENTIALS_SCHEMA, IDENTIFIER_SCHEMA, resolve
from plugins.mysql.dump import tool
from taskworker import Task, TaskContext, TaskFailed
from taskworker.environment import minimal_environment

START_TIMEOUT_SECONDS = 60.0
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
STOP_TIMEOUT_SECONDS = 30.0
_CONFIG = """[mysqld]
datadir={data}
port={port}
bind-address=127.0.0.1
socket={home}/mysqld.sock
pid-file={home}/mysqld.pid
log-error={home}/error.log
user={user}
skip-name-resolve
"""


class Provision(Task):
    """Initialises, configures and starts a new server instance on a free port."""

    task_type = "mysql_provision"
    params_schema = {
        "type": "object",
        "properties": {
            "name": IDENTIFIER_SCHEMA,
            "base_dir": {"type": "string", "minLength": 1},
            "port": {"type": "integer", "minimum": 1024, "maximum": 65535},
            "root_credentials": CREDENTIALS_SCHEMA,
        },
        "required": ["name", "base_dir", "root_credentials"],
        "additionalProperties": False,
    }

    def resources(self, params: dict[str, Any]) -> list[str]:
        return [f"mysql-instance-dir:{Path(params['base_dir']) / params['name']}"]

    def run(self, ctx: TaskContext) -> dict[str, Any]:
        home = Path(ctx.params["base_dir"]) / ctx.params["name"]
        if (home / "data").exists():
            raise TaskFailed(f"{home} already holds an instance", retryable=False)
        port = ctx.params.get("port") or _free_port()
        if not _port_free(port):
            raise TaskFailed(f"port {port} is in use", retryable=False)
        password = resolve(ctx.params["root_credentials"]).password
        home.mkdir(parents=True, exist_ok=True)
        try:
            return self._create(ctx, home, port, password)
        except BaseException:
            # A failed start leaves nothing behind: no process, no port, no files.
            self.rollback(ctx)
            raise

    def _create(self, ctx: TaskContext, home: Path, port: int, password: str) -> dict[str, Any]:
        config = home / "my.cnf"
        config.write_text(
            _CONFIG.format(data=home / "data", port=port, home=home, user=getpass.getuser())
        )
        ctx.progress(10, "initialising the data directory")
        _run(
            ctx,
            [
                tool("mariadb-install-db", "mysql_install_db"),
                f"--defaults-file={config}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
        )
        ctx.checkpoint()
        ctx.progress(50, f"starting on port {port}")
        # setsid --fork: the server is not this worker's child, so it outlives the step
        # and no zombie is left when it stops.
        _run(ctx, ["setsid", "--fork", tool("mariadbd", "mysqld"), f"--defaults-file={config}"])
        self._wait_until_up(ctx, home)
        pid = int((home / "mysqld.pid").read_text().strip())
        ctx.log(f"server pid {pid} on 127.0.0.1:{port}")
        with _admin(home) as conn, conn.cursor() as cur:
            # A root account by host name is unusable under skip-name-resolve: remove it.
            cur.execute(
                "DELETE FROM mysql.global_priv WHERE User = 'root' AND Host NOT IN %s",
                (LOCAL_HOSTS,),
            )
            cur.execute("FLUSH PRIVILEGES")
            cur.execute("SELECT Host FROM mysql.user WHERE User = 'root'")
            for (host,) in cur.fetchall():
                cur.execute("ALTER USER 'root'@%s IDENTIFIED BY %s", (host, password))
        ctx.progress(100, "up")
        return {"host": "127.0.0.1", "port": port, "home": str(home), "pid": pid}

    def _wait_until_up(self, ctx: TaskContext, home: Path) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        errors = home / "error.log"
        while time.monotonic() < deadline:
            if _listening(home):
                _admin(home).close()
                return
            if errors.exists() and "[ERROR] Aborting" in errors.read_text(errors="replace"):
                tail = errors.read_text(errors="replace").strip().splitlines()[-3:]
                raise TaskFailed(f"the server did not start: {' / '.join(tail)}")
            ctx.checkpoint()
            ctx.wait(0.2)
        raise TaskFailed(f"the server did not answer in {START_TIMEOUT_SECONDS} s")

    def rollback(self, ctx: TaskContext) -> None:
        home = Path(ctx.params["base_dir"]) / ctx.params["name"]
        pid_file = home / "mysqld.pid"
        if pid_file.exists():
            _stop(ctx, int(pid_file.read_text().strip()))
        shutil.rmtree(home, ignore_errors=True)
        ctx.log(f"instance {ctx.params['name']} stopped and {home} removed")


def _admin(home: Path) -> Any:
    """Root over the instance's own socket: never another server that holds the port."""
    return pymysql.connect(unix_socket=str(home / "mysqld.sock"), user="root", connect_timeout=1)


def _listening(home: Path) -> bool:
    """Whether the server accepts on its socket (probed without pymysql, which leaks a socket
    object on every refused attempt)."""
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(home / "mysqld.sock"))
        except OSError:
            return False
    return True


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no server
        try:
            probe.bind(("127.0.0.1", port))
            probe.listen()
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(ctx: TaskContext, argv: list[str]) -> None:
    done = subprocess.run(
        argv, capture_output=True, text=True, check=False, env=minimal_environment()
    )
    if done.returncode != 0:
        raise TaskFailed(f"{Path(argv[0]).name} failed: {done.stderr.strip()[-500:]}")
    ctx.log(f"{Path(argv[0]).name}: ok")


def _stop(ctx: TaskContext, pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    ctx.log(f"server {pid} ignored SIGTERM for {STOP_TIMEOUT_SECONDS} s: killing it", "warning")
    os.kill(pid, signal.SIGKILL)
