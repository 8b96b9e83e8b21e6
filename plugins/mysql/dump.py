"""Running the server's own client tools without exposing the password.

The password goes into a temporary option file readable only by this process's user,
passed as ``--defaults-extra-file``; never on the command line (where ``ps`` shows it) or
in the environment of the child (where ``/proc`` shows it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from plugins.mysql.connection import resolve
from taskworker import TaskFailed


def tool(*names: str) -> str:
    """The first of ``names`` on PATH (MariaDB and MySQL name their tools differently)."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise TaskFailed(f"none of {', '.join(names)} is installed on this worker", retryable=False)


@contextlib.contextmanager
def option_file(instance: dict[str, Any], reference: str) -> Iterator[str]:
    creds = resolve(reference)
    handle, path = tempfile.mkstemp(prefix="taskworker-", suffix=".cnf")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(
                "[client]\n"
                f"host={instance['host']}\nport={int(instance.get('port', 3306))}\n"
                f"user={_quoted(creds.user)}\npassword={_quoted(creds.password)}\n"
            )
        yield path
    finally:
        os.unlink(path)


def _quoted(value: str) -> str:
    """An option-file value, quoted so that spaces, ``#`` and quotes survive."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
