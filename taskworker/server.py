"""The worker's side of the uniform task contract (DESIGN §4) as a Falcon WSGI app.

The resources stay thin: parse the query, decode the body with the contract's structs (the
same ones the scheduler uses, so a bad field is named the same way), call the executor,
encode the answer. Every request but ``/health`` must carry a valid HMAC signature of the
shared secret; the signature covers the method, the path *with* its query, the timestamp and
the body, so nothing is read or changed for an unsigned, forged or replayed request.

A body must then be ``application/json`` (415 otherwise) nested at most
:data:`MAX_JSON_DEPTH` levels (400 naming ``body``): :func:`require_json` and
:func:`check_nesting` are the contract's body rules, which the scheduler's API applies too.

Errors are one table: each :class:`~taskworker.errors.TaskError` carries its status.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import falcon
import msgspec

from taskworker import signing
from taskworker.contract.api import Action, ErrorBody, Query
from taskworker.contract.codec import decode
from taskworker.contract.worker import (
    ActCall,
    CallBatch,
    CallResult,
    CallResults,
    CreateCall,
    WorkerCreateBody,
)
from taskworker.errors import InvalidInput, PayloadTooLarge, TaskError, Unavailable
from taskworker.executor import Executor
from taskworker.settings import WorkerSettings

#: falcon's WSGI app with its own request and response types (the scheduler's too).
WsgiApp = falcon.App[falcon.Request, falcon.Response]

log = logging.getLogger(__name__)

#: Requests with a larger body get 413 before a byte of it is read.
MAX_BODY_BYTES = 1 << 20
#: Paths served without a signature: they change nothing and reveal nothing of tasks.
UNSIGNED = frozenset({"/health"})
#: JSON nested deeper than this is refused before it is decoded: the contract's shapes and
#: any sane params need far fewer levels, and the decoder's stack is not unbounded.
MAX_JSON_DEPTH = 64
#: A JSON string, escapes included (unrolled, so long strings cost one linear pass).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
#: Every byte but the four brackets, for ``bytes.translate`` to delete.
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENING = frozenset(b"[{")


def require_json(content_type: str | None) -> None:
    """A body must be ``application/json`` (any parameters): a form or ``text/plain``, which a
    web page may post anywhere without asking, is never taken for a command (415)."""
    media_type = falcon.parse_header(content_type)[0].lower() if content_type else ""
    if media_type != falcon.MEDIA_JSON:
        raise falcon.HTTPUnsupportedMediaType(
            description=f"a body must be {falcon.MEDIA_JSON}, not {media_type[:100] or 'untyped'}"
        )


def check_nesting(body: bytes) -> None:
    """400 naming ``body`` when arrays and objects nest deeper than :data:`MAX_JSON_DEPTH`.

    Cheap: a body with fewer brackets than the limit is passed by two counts; otherwise its
    strings are cut out and the brackets left are walked once, stopping at the first level
    too deep (about 25 ms for a megabyte of nothing but brackets).
    """
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return
    depth = 0
    for byte in _STRING.sub(b"", body).translate(None, _NOT_BRACKETS):
        if byte in _OPENING:
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise InvalidInput("body", f"is nested deeper than {MAX_JSON_DEPTH} levels")
        else:
            depth -= 1


class Signed:
    """Middleware: read the body within its limit, verify the request's signature, then hold
    the body to the contract's rules (the signer learns of a bad one, nobody else)."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        length = req.content_length or 0
        if length > MAX_BODY_BYTES:
            raise PayloadTooLarge(MAX_BODY_BYTES)
        req.context.body = req.bounded_stream.read(length) if length else b""
        if req.path in UNSIGNED:
            return
        target = f"{req.path}?{req.query_string}" if req.query_string else req.path
        req.context.signer = signing.verify(
            self._secret, req.method, target, req.context.body, req.headers
        )
        if req.context.body:
            require_json(req.content_type)
            check_nesting(req.context.body)


class TaskResource:
    """``/v1/task/{task_type}``: create, act, query."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    def on_post(self, req: falcon.Request, resp: falcon.Response, task_type: str) -> None:
        body = decode(req.context.body or b"{}", WorkerCreateBody, root="")
        view, new = self._executor.create(task_type, body)
        _reply(resp, view, 201 if new else 200)

    def on_put(self, req: falcon.Request, resp: falcon.Response, task_type: str) -> None:
        task_id = _integer(req, "task_id", required=True)
        attempt = _integer(req, "attempt", required=True)
        action = _choice(req, "action", Action)
        if action is None:
            raise InvalidInput("action", "is required")
        assert task_id is not None and attempt is not None
        view = self._executor.act(task_type, task_id, action, attempt, req.context.body)
        _reply(resp, view)

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_type: str) -> None:
        task_id = _integer(req, "task_id", required=True)
        assert task_id is not None
        what = _choice(req, "action", Query)
        attempt = _integer(req, "attempt")
        _reply(resp, self._executor.query(task_type, task_id, what, attempt))


class BatchResource:
    """``/v1/batch``: many contract calls in one request (see :class:`CallBatch`).

    A dispatch of fifty tasks is three HTTP exchanges (create, prepare, running) instead of a
    hundred and fifty; each call still answers with the status it would have had alone.
    """

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        batch = decode(req.context.body or b"{}", CallBatch, root="")
        _reply(resp, CallResults([self._call(call) for call in batch.calls]))

    def _call(self, call: CreateCall | ActCall) -> CallResult:
        try:
            if isinstance(call, CreateCall):
                view, new = self._executor.create(call.task_type, call.body)
                return CallResult(201 if new else 200, view)
            body = msgspec.json.encode(call.body) if call.body is not None else b""
            view = self._executor.act(call.task_type, call.task_id, call.action, call.attempt, body)
            return CallResult(200, view)
        except TaskError as exc:
            return CallResult(exc.http_status, exc.to_body())
        except Exception:
            log.exception("unexpected error in a batch call %s", call)
            return CallResult(500, ErrorBody("Internal error", "an unexpected error; see the log"))


class HealthResource:
    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        status = self._executor.status()
        _reply(resp, status, 503 if status["draining"] else 200)


def create_app(executor: Executor, settings: WorkerSettings) -> WsgiApp:
    """The contract over ``executor``; ``settings.worker_secret`` verifies every request."""
    assert settings.worker_secret, "WorkerSettings.check() requires the secret"
    app = falcon.App(middleware=[Signed(settings.worker_secret)])
    app.add_error_handler(Exception, _internal)
    app.add_error_handler(falcon.HTTPError, _http_error)
    app.add_error_handler(TaskError, _task_error)
    app.add_route("/v1/task/{task_type}", TaskResource(executor))
    app.add_route("/v1/batch", BatchResource(executor))
    app.add_route("/health", HealthResource(executor))
    return app


def _integer(req: falcon.Request, name: str, *, required: bool = False) -> int | None:
    raw = req.get_param(name)
    if raw is None:
        if required:
            raise InvalidInput(name, "is required")
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidInput(name, f"must be a positive integer, not {raw!r}")
    return int(raw)


def _choice(req: falcon.Request, name: str, kind: Any) -> Any:
    raw = req.get_param(name)
    if raw is None:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise InvalidInput(name, f"must be one of {', '.join(k.value for k in kind)}") from None


def _reply(resp: falcon.Response, obj: Any, status: int = 200) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = msgspec.json.encode(obj)


def _task_error(req: falcon.Request, resp: falcon.Response, ex: TaskError, _: Any) -> None:
    if isinstance(ex, Unavailable):
        resp.set_header("Retry-After", str(ex.retry_after))
    _reply(resp, ex.to_body(), ex.http_status)


def _http_error(req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, _: Any) -> None:
    resp.set_headers(ex.headers or {})
    _reply(resp, ErrorBody(title=ex.title, description=ex.description or ex.title), ex.status_code)


def _internal(req: falcon.Request, resp: falcon.Response, ex: Exception, _: Any) -> None:
    log.exception("unexpected error on %s %s", req.method, req.path)
    body = ErrorBody(title="Internal error", description="an unexpected error; see the log")
    _reply(resp, body, 500)
