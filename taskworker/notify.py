"""Reporting a task's completion from outside the worker, with nothing but the stdlib.

An asynchronous plugin hands its work to another process (or machine); that process calls
:func:`notify` once with the task's notify URL and token. Retries with backoff cover a
scheduler that is briefly unreachable or restarting; a refusal (4xx) is final.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

#: Attempts and the first pause between them (doubling).
ATTEMPTS = 6
FIRST_BACKOFF_SECONDS = 0.5


class NotifyRefused(Exception):
    """The scheduler answered with a 4xx: retrying would not help."""


def notify(
    url: str,
    token: str,
    *,
    success: bool,
    result: Any = None,
    error: Any = None,
    timeout: float = 10.0,
) -> None:
    body = json.dumps({"success": success, "result": result, "error": error}).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="PUT",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    pause = FIRST_BACKOFF_SECONDS
    for attempt in range(ATTEMPTS):
        try:
            with urllib.request.urlopen(request, timeout=timeout):
                return
        except urllib.error.HTTPError as exc:
            if 400 <= exc.code < 500:
                raise NotifyRefused(f"{exc.code}: {exc.read().decode(errors='replace')}") from None
            if attempt == ATTEMPTS - 1:
                raise
        except OSError:
            if attempt == ATTEMPTS - 1:
                raise
        time.sleep(pause)
        pause *= 2
