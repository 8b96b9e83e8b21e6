"""``mysql_backup``: a logical backup of one database with the server's dump tool.

Progress comes from the dump's own output (``--verbose`` names each table as it starts);
the result carries the file's size and SHA-256, computed while the dump streams to disk, so
a restore can check it. A failed or cancelled dump leaves no partial file, and rolling the
task back removes the file it wrote.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

from plugins.mysql.connection import (
    IDENTIFIER_SCHEMA,
    connect,
    instance_key,
    on_instance,
)
from plugins.mysql.dump import option_file, tool
from taskworker import Cancelled, Task, TaskContext, TaskFailed
from taskworker.environment import minimal_environment

_TABLE_STARTED = re.compile(r"Retrieving table structure for table `?([^`.]+)`?")
CHUNK_BYTES = 1 << 16


class Backup(Task):
    """Dumps a database to a file (mariadb-dump or mysqldump)."""

    task_type = "mysql_backup"
    params_schema = on_instance(
        ["database", "target"],
        database=IDENTIFIER_SCHEMA,
        target={"type": "string", "minLength": 1},
    )

    def resources(self, params: dict[str, Any]) -> list[str]:
        return [
            f"file:{params['target']}",
            f"{instance_key(params['instance'])}/{params['database']}:backup",
        ]

    def run(self, ctx: TaskContext) -> dict[str, Any]:
        p = ctx.params
        target = Path(p["target"])
        with connect(p["instance"], p["credentials"], p["database"]) as conn, conn.cursor() as cur:
            tables = cur.execute("SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'")
        partial = target.with_name(target.name + ".partial")
        argv = [tool("mariadb-dump", "mysqldump")]
        try:
            with option_file(p["instance"], p["credentials"]) as options:
                argv += [
                    f"--defaults-extra-file={options}",
                    "--single-transaction",
                    "--routines",
                    "--triggers",
                    "--verbose",
                    p["database"],
                ]
                digest, size = self._dump(ctx, argv, partial, max(tables, 1))
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        ctx.progress(100, "done")
        ctx.log(f"{p['database']}: {size} bytes to {target}")
        return {"file": str(target), "bytes": size, "sha256": digest, "tables": tables}

    def _dump(self, ctx: TaskContext, argv: list[str], out: Path, tables: int) -> tuple[str, int]:
        with subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env=minimal_environment(),  # never the worker's secrets
        ) as proc:
            return self._stream(ctx, proc, out, tables)

    def _stream(
        self, ctx: TaskContext, proc: subprocess.Popen[bytes], out: Path, tables: int
    ) -> tuple[str, int]:
        assert proc.stdout is not None and proc.stderr is not None
        errors: list[str] = []
        watcher = threading.Thread(
            target=_follow_progress, args=(proc.stderr, ctx, tables, errors), daemon=True
        )
        watcher.start()
        digest = hashlib.sha256()
        size = 0
        try:
            with open(out, "wb") as handle:
                while chunk := proc.stdout.read(CHUNK_BYTES):
                    handle.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    ctx.checkpoint()
        except Cancelled:
            proc.kill()
            raise
        finally:
            code = proc.wait()
            watcher.join(timeout=5)
        if code != 0:
            raise TaskFailed(f"dump exited with {code}: {' '.join(errors[-3:])}")
        return digest.hexdigest(), size

    def rollback(self, ctx: TaskContext) -> None:
        target = Path(ctx.params["target"])
        target.unlink(missing_ok=True)
        target.with_name(target.name + ".partial").unlink(missing_ok=True)
        ctx.log(f"removed {target}")


def _follow_progress(stream: Any, ctx: TaskContext, tables: int, errors: list[str]) -> None:
    done = 0
    for raw in stream:
        line = raw.decode("utf-8", "replace").strip()
        found = _TABLE_STARTED.search(line)
        if found:
            done += 1
            ctx.progress(min(99.0, 100.0 * (done - 1) / tables), f"table {found.group(1)}")
        elif line and not line.startswith("--"):
            errors.append(line)
