"""A thin client of the scheduler's REST API: JSON in, JSON out, failures as exit codes.

Every failure becomes a :class:`ConsoleError` carrying the exit code a script can act on
and the API's own description, so the CLI prints one line and never a traceback:

==============================  ===========================================================
what happened                   exit code
==============================  ===========================================================
400 bad input, 413 too large    ``USAGE`` (2): the API names the field
401 / 403 token refused         ``USAGE`` (2): the token or its role is wrong
404 unknown task, type, route   ``NOT_FOUND`` (3); a missing route is "not supported"
409 transition refused          ``CONFLICT`` (4), with the API's description
no answer, 5xx                  ``UNREACHABLE`` (5)
==============================  ===========================================================

The uniform endpoint needs a task's type (``/v1/task/{type}?task_id=``) where an operator
only knows the id. :meth:`ApiClient.task` finds it without a dedicated route: the task list
is newest first with a keyset ``cursor`` (``id < cursor``), so ``cursor=ID+1&limit=1``
answers with task ``ID`` itself when it exists.

The requests go through urllib3, pooled (``watch`` and ``logs -f`` ask again and again)
and without retries of its own: an operator's command is one short process, and urllib3
imports in a third of the time of a client with more to it, which is most of the time
such a command takes.
"""

from __future__ import annotations

import json as jsonlib
from typing import Any
from urllib.parse import quote, urlencode

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, TimeoutError

from taskconsole.exit_codes import ExitCode

#: Seconds a request may take before the scheduler counts as unreachable.
DEFAULT_TIMEOUT_SECONDS = 10.0
#: The title the scheduler gives its own "no such task/type/trigger"; a 404 with any other
#: title comes from the router: the scheduler has no such endpoint.
DOMAIN_NOT_FOUND_TITLE = "Not found"

_STATUS_CODES = {
    400: ExitCode.USAGE,
    401: ExitCode.USAGE,
    403: ExitCode.USAGE,
    404: ExitCode.NOT_FOUND,
    409: ExitCode.CONFLICT,
    413: ExitCode.USAGE,
}


class ConsoleError(Exception):
    """A failure to report in one line, with the exit code that classifies it."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class ApiClient:
    """Requests against one scheduler with one bearer token."""

    def __init__(
        self, url: str, token: str | None = None, timeout: float = DEFAULT_TIMEOUT_SECONDS
    ) -> None:
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self.url = url.rstrip("/")
        self._http = urllib3.PoolManager(
            retries=False, timeout=urllib3.Timeout(connect=timeout, read=timeout)
        )

    def close(self) -> None:
        self._http.clear()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        feature: str | None = None,
    ) -> Any:
        """The decoded answer; ``feature`` names an endpoint a scheduler may not have yet."""
        query = {k: _text(v) for k, v in (params or {}).items() if v is not None}
        url = f"{self.url}{quote(path, safe='/')}" + (f"?{urlencode(query)}" if query else "")
        headers, body = self._headers, None
        if json is not None:
            headers = {**headers, "Content-Type": "application/json"}
            body = jsonlib.dumps(json).encode()
        try:
            response = self._http.request(method, url, body=body, headers=headers)
        except NewConnectionError as exc:  # a kind of connect timeout, to urllib3
            message = f"scheduler at {self.url} is unreachable: {_reason(exc)}"
            raise ConsoleError(message, ExitCode.UNREACHABLE) from None
        except TimeoutError:
            message = f"scheduler at {self.url} did not answer in time"
            raise ConsoleError(message, ExitCode.UNREACHABLE) from None
        except HTTPError as exc:
            message = f"scheduler at {self.url} is unreachable: {_reason(exc)}"
            raise ConsoleError(message, ExitCode.UNREACHABLE) from None
        if 200 <= response.status < 300:
            return jsonlib.loads(response.data) if response.data else None
        raise _failure(response, feature)

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def task(self, task_id: int) -> dict[str, Any]:
        """The whole task, found by id alone (see the module docstring)."""
        page = self.get("/v1/tasks", cursor=task_id + 1, limit=1)
        items = page["items"]
        if not items or items[0]["task_id"] != task_id:
            raise ConsoleError(f"no task {task_id}", ExitCode.NOT_FOUND)
        return dict(items[0])

    def act(
        self, task_id: int, action: str, body: Any = None, reason: str | None = None
    ) -> dict[str, Any]:
        """``PUT /v1/task/{type}?task_id=ID&action=A``: the task after the action."""
        task_type = self.task(task_id)["task_type"]
        query = {"task_id": task_id, "action": action, "reason": reason}
        path = f"/v1/task/{task_type}"
        return dict(self.request("PUT", path, params=query, json=body if body else {}))

    def pages(self, path: str, limit: int | None, **params: Any) -> list[dict[str, Any]]:
        """Items of a keyset-paged list, following ``next_cursor`` up to ``limit`` (None: all)."""
        found: list[dict[str, Any]] = []
        cursor = None
        while limit is None or len(found) < limit:
            size = 500 if limit is None else min(500, limit - len(found))
            page = self.get(path, **params, limit=size, cursor=cursor)
            found.extend(page["items"])
            cursor = page.get("next_cursor")
            if cursor is None:
                break
        return found


def _text(value: Any) -> str:
    """A query value as the API reads it (``true``/``false`` for a flag)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _reason(exc: HTTPError) -> str:
    """What went wrong, without urllib3's description of its connection object."""
    return str(exc).rpartition("): ")[2] or str(exc)


def _failure(response: urllib3.BaseHTTPResponse, feature: str | None) -> ConsoleError:
    status = response.status
    try:
        body = jsonlib.loads(response.data)
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    title = str(body.get("title") or response.reason or status)
    description = str(body.get("description") or title)
    if status == 404 and feature and title != DOMAIN_NOT_FOUND_TITLE:
        return ConsoleError(
            f"{feature} is not supported by this scheduler (no such endpoint)",
            ExitCode.NOT_FOUND,
        )
    if status in (401, 403):
        return ConsoleError(f"{title.lower()}: {description} (check --token)", ExitCode.USAGE)
    code = _STATUS_CODES.get(status, ExitCode.UNREACHABLE)
    if code is ExitCode.UNREACHABLE:
        retry = response.headers.get("Retry-After")
        hint = f"; retry after {retry} s" if retry else ""
        return ConsoleError(f"scheduler error {status}: {description}{hint}", code)
    return ConsoleError(f"{title.lower()}: {description}", code)
