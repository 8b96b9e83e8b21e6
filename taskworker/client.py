"""One signed JSON HTTP client for the calls between scheduler and workers.

Both directions speak the same way (JSON bodies, HMAC-signed with the shared secret, errors
as ``{title, description}``), so both use this one client: the worker for its registration
and reports, the scheduler for the commands it sends to workers.

It sits on a urllib3 ``PoolManager`` (the least CPU per request measured here, thread-safe),
which several clients may share to keep one pool of connections per host. Timeouts are
explicit. Only failures to *connect* are retried here, because a request that reached the
other side may have been applied: whoever calls decides whether to repeat a request, and the
attempt fence and the state table make repeats safe to refuse.

An answer with an error status raises the error class of :mod:`taskworker.errors` that the
status stands for, so a caller handles a 409 from a worker exactly like a local one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import msgspec
import urllib3

from taskworker import signing
from taskworker.contract.codec import decode, encode
from taskworker.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TaskError,
    Unauthorized,
    Unavailable,
)

T = TypeVar("T")

#: Connecting must be quick on a LAN; reading may wait for a step (prepare) to answer.
CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 60.0
#: Connection attempts after the first, with a short doubling pause between them.
CONNECT_RETRIES = 2
#: Seconds to suggest before retrying when the other side cannot be reached at all.
UNREACHABLE_RETRY_AFTER_SECONDS = 2


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    data: bytes

    def json(self, shape: type[T]) -> T:
        return decode(self.data, shape, root="")


class RemoteError(TaskError):
    """The other side answered with a status that no error class of ours stands for."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.http_status = status


class SignedClient:
    """Signed JSON requests to one base URL, as the node ``name``."""

    def __init__(
        self,
        base_url: str,
        secret: str,
        *,
        name: str = "",
        pool: urllib3.PoolManager | None = None,
        timeout: urllib3.Timeout | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._prefix = urlsplit(self.base_url).path
        self._secret = secret
        self._name = name
        self._pool = pool or shared_pool()
        self._timeout = timeout or urllib3.Timeout(
            connect=CONNECT_TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS
        )
        self._retry = urllib3.Retry(
            total=CONNECT_RETRIES,
            connect=CONNECT_RETRIES,
            read=0,
            status=0,
            other=0,
            redirect=0,
            backoff_factor=0.1,
            raise_on_status=False,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> Reply:
        """Send one request; return a 2xx reply, raise the matching error otherwise."""
        target = self._prefix + path
        if query:
            target += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        data = b"" if body is None else body if isinstance(body, bytes) else encode(body)
        headers = signing.sign(self._secret, method, target, data, worker=self._name)
        if data:
            headers["Content-Type"] = "application/json"
        try:
            answer = self._pool.request(
                method,
                self.base_url + target.removeprefix(self._prefix),
                body=data or None,
                headers=headers,
                timeout=self._timeout if timeout is None else urllib3.Timeout(timeout),
                retries=self._retry,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise Unavailable(
                f"{method} {self.base_url}{path}: {type(exc).__name__}: {exc}",
                UNREACHABLE_RETRY_AFTER_SECONDS,
            ) from None
        reply = Reply(answer.status, dict(answer.headers), answer.data)
        if reply.status >= 400:
            raise _error(reply)
        return reply


@functools.cache
def shared_pool() -> urllib3.PoolManager:
    """The process's pool, created on first use (after a fork, in the child that uses it)."""
    return urllib3.PoolManager(num_pools=32, maxsize=16, block=False)


class _ErrorBody(msgspec.Struct):
    title: str = ""
    description: str = ""
    field: str | None = None


def _error(reply: Reply) -> TaskError:
    try:
        body = msgspec.json.decode(reply.data, type=_ErrorBody)
    except msgspec.MsgspecError:
        body = _ErrorBody(description=reply.data[:200].decode(errors="replace"))
    return _error_of(reply.status, body, reply.headers.get("Retry-After", "1"))


def error_for(status: int, body: Any) -> TaskError:
    """The error an answer with ``status`` and the JSON ``body`` stands for (a call of a
    batch is answered that way, within a 200)."""
    try:
        shaped = msgspec.convert(body, _ErrorBody)
    except msgspec.MsgspecError:
        shaped = _ErrorBody(description=str(body)[:200])
    return _error_of(status, shaped, "1")


def _error_of(status: int, body: _ErrorBody, retry_after: str) -> TaskError:
    text = body.description or body.title or f"HTTP {status}"
    if status == 400:
        return InvalidInput(body.field or "body", text.removeprefix(f"{body.field}: "))
    if status == 503:
        return Unavailable(text, int(retry_after) if retry_after.isdigit() else 1)
    simple: dict[int, type[TaskError]] = {
        401: Unauthorized,
        403: Forbidden,
        409: Conflict,
    }
    if status in simple:
        return simple[status](text)
    if status == 404:
        return NotFound("resource", text)
    return RemoteError(status, text)
