"""``mysql_restore``: load a logical backup into a database, after checking its checksum.

A restore overwrites: it has no rollback (the plugin says so, and the scheduler refuses a
rollback rather than pretending). Back the target up first in the same topology when the
old contents matter.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

from plugins.mysql.backup import CHUNK_BYTES
from plugins.mysql.connection import (
    IDENTIFIER_SCHEMA,
    instance_key,
    on_instance,
)
from plugins.mysql.dump import option_file, tool
from taskworker import Cancelled, Task, TaskContext, TaskFailed
from taskworker.environment import minimal_environment


class Restore(Task):
    """Loads a dump file into a database (mariadb or mysql client)."""

    task_type = "mysql_restore"
    params_schema = on_instance(
        ["database", "source"],
        database=IDENTIFIER_SCHEMA,
        source={"type": "string", "minLength": 1},
        sha256={"type": "string", "pattern": "^[0-9a-f]{64}$"},
    )

    def resources(self, params: dict[str, Any]) -> list[str]:
        return [f"{instance_key(params['instance'])}/{params['database']}"]

    def prepare(self, ctx: TaskContext) -> None:
        source = Path(ctx.params["source"])
        if not source.is_file():
            raise TaskFailed(f"no backup file {source}", retryable=False)
        expected = ctx.params.get("sha256")
        if expected and _sha256(source) != expected:
            raise TaskFailed(f"{source} does not match its checksum", retryable=False)

    def run(self, ctx: TaskContext) -> dict[str, Any]:
        self.prepare(ctx)
        p = ctx.params
        source = Path(p["source"])
        total = max(source.stat().st_size, 1)
        with option_file(p["instance"], p["credentials"]) as options:
            argv = [tool("mariadb", "mysql"), f"--defaults-extra-file={options}", p["database"]]
            with subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                env=minimal_environment(),  # never the worker's secrets
            ) as proc:
                sent = _feed(ctx, proc, source, total)
                if proc.wait() != 0:
                    raise TaskFailed(f"restore failed: {_stderr(proc)}")
        ctx.log(f"restored {sent} bytes into {p['database']}")
        return {"database": p["database"], "bytes": sent}


def _feed(ctx: TaskContext, proc: subprocess.Popen[bytes], source: Path, total: int) -> int:
    assert proc.stdin is not None
    sent = 0
    try:
        with open(source, "rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                proc.stdin.write(chunk)
                sent += len(chunk)
                ctx.progress(100.0 * sent / total)
                ctx.checkpoint()
        proc.stdin.close()
    except Cancelled:
        proc.kill()
        raise
    except BrokenPipeError:
        pass  # the client stopped reading: its exit code and stderr say why
    return sent


def _stderr(proc: subprocess.Popen[bytes]) -> str:
    assert proc.stderr is not None
    return proc.stderr.read().decode("utf-8", "replace").strip()[-500:]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
