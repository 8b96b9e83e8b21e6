"""The environment of a process a plugin starts: never the worker's own.

The worker's environment holds its secrets (``TASK_WORKER_SECRET``, ``TASK_API_TOKENS``,
``TASK_DB_URL``, credentials as ``TASK_CRED_*``). A command a task runs is work somebody
asked for, not part of the worker, and ``/proc/<pid>/environ`` of a long-lived child (a
server a plugin started) shows whatever it inherited. So a plugin's child gets the worker's
values of ``PATH``, ``HOME`` and ``LANG`` alone (safe defaults when they are unset), plus
what the plugin passes explicitly: the task's own ``env``, or the one setting a tool needs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: The only variables taken from the worker, with what a child gets when the worker has none.
INHERITED = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def minimal_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """``PATH``, ``HOME`` and ``LANG`` from the worker, then ``extra`` over them."""
    base = {name: os.environ.get(name) or default for name, default in INHERITED.items()}
    # Without HOME, expanduser reads the user's entry in the password database; "~" back
    # means there is none either.
    home = os.environ.get("HOME") or os.path.expanduser("~")
    base["HOME"] = home if home != "~" else "/"
    return {**base, **(extra or {})}
