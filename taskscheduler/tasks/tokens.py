"""The per-task notify token: lets an outside system report on one task and nothing else.

An asynchronous task ends when someone calls ``notify`` (DESIGN §2); that someone is often a
system holding no API token. The create response hands out a token that authorises
``notify``, ``progress`` and ``heartbeat`` for that one task. It is the HMAC-SHA256 of the
task id under the shared secret, so nothing is stored, every scheduler node can check it, and
rotating ``TASK_WORKER_SECRET`` revokes all of them at once.
"""

from __future__ import annotations

import hashlib
import hmac

#: Domain separation: a notify token can never equal a request signature.
_PURPOSE = b"taskscheduler notify token v1\n"


def notify_token(secret: str | None, task_id: int) -> str | None:
    """The token for ``task_id``, or None when no secret is configured (nothing to derive)."""
    if not secret:
        return None
    message = _PURPOSE + str(task_id).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def is_notify_token(secret: str | None, task_id: int, token: str) -> bool:
    """Constant-time check of ``token`` against the one derived for ``task_id``."""
    expected = notify_token(secret, task_id)
    if expected is None:
        return False
    return hmac.compare_digest(expected.encode(), token.encode(errors="replace"))
