"""The one error table: everything raised while answering becomes ``{title, description}``.

Resources never build error bodies; they raise. Each class of :mod:`taskworker.errors`
carries its status (400 with ``field``, 401, 403, 404, 409, 413, 503 with ``Retry-After``).
What other libraries raise is translated here, once:

=====================================  ======================================================
raised                                 answered
=====================================  ======================================================
``TaskError`` and subclasses           its ``http_status`` and ``to_body()``
SQLAlchemy: cannot connect, pool       503 ``Unavailable``, ``Retry-After``: the database is
exhausted, lost connection, deadlock   down or busy; the request changed nothing
SQLAlchemy ``IntegrityError``          409: the write clashes with stored data
falcon ``HTTPError`` (404, 405, 415)   its status, same body shape, its headers (``Allow``)
anything else                          500, logged with its traceback; no internals leak
=====================================  ======================================================
"""

from __future__ import annotations

import logging
from typing import Any

import falcon
from sqlalchemy import exc as sa

from taskscheduler.api.media import reply
from taskworker.contract.api import ErrorBody
from taskworker.errors import Conflict, TaskError, Unavailable
from taskworker.server import WsgiApp

log = logging.getLogger(__name__)

#: Seconds a client should wait before retrying when the database is unreachable.
DATABASE_RETRY_AFTER_SECONDS = 5

#: SQLAlchemy errors that mean "not now" rather than "never": the service is down or busy.
_UNAVAILABLE = (sa.OperationalError, sa.InterfaceError, sa.TimeoutError, sa.DisconnectionError)


def install(app: WsgiApp) -> None:
    """Register the table; falcon picks the most specific class for each exception."""
    app.add_error_handler(Exception, _internal)
    app.add_error_handler(falcon.HTTPError, _http_error)
    app.add_error_handler(TaskError, _task_error)
    app.add_error_handler(sa.IntegrityError, _integrity)
    for kind in _UNAVAILABLE:
        app.add_error_handler(kind, _database_down)


def _task_error(
    req: falcon.Request, resp: falcon.Response, ex: TaskError, params: dict[str, Any]
) -> None:
    if isinstance(ex, Unavailable):
        resp.set_header("Retry-After", str(ex.retry_after))
    reply(resp, ex.to_body(), ex.http_status)


def _database_down(
    req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]
) -> None:
    log.warning("database unavailable on %s %s: %s", req.method, req.path, ex)
    down = Unavailable(
        "the database is unreachable or busy; nothing was changed, try again",
        DATABASE_RETRY_AFTER_SECONDS,
    )
    _task_error(req, resp, down, params)


def _integrity(
    req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]
) -> None:
    log.info("integrity error on %s %s: %s", req.method, req.path, ex)
    _task_error(req, resp, Conflict("the request clashes with stored data"), params)


def _http_error(
    req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params: dict[str, Any]
) -> None:
    resp.set_headers(ex.headers or {})
    body = ErrorBody(title=ex.title, description=ex.description or ex.title)
    reply(resp, body, ex.status_code)


def _internal(
    req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]
) -> None:
    log.exception("unexpected error on %s %s", req.method, req.path)
    body = ErrorBody(title="Internal error", description="an unexpected error; see the log")
    reply(resp, body, 500)
