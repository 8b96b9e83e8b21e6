"""Who may call what: bearer tokens with roles, signed worker requests, notify tokens.

Each resource states, per request, the :class:`Access` it needs; this middleware proves the
caller has it and puts the caller's name in ``req.context.actor`` (it goes into transition
records). Credentials, in the order they are tried:

* a request carrying ``X-Task-Signature`` must verify under ``TASK_WORKER_SECRET`` and is
  accepted only where workers report (register, heartbeat, logs, task reports): actor
  ``worker:<name>``;
* ``Authorization: Bearer <token>`` from ``TASK_API_TOKENS``: viewer < operator < admin,
  actor ``<role>:<first 8 hex of the token's SHA-256>`` (never the token itself);
* the task's notify token (bearer or ``?token=``), only for notify/progress/heartbeat of
  that one task: actor ``notify-token``.

Missing or unknown credentials are 401, a role too low 403, a method the resource does not
serve 405 before any credential is looked at. With no tokens configured the API is open
(actor ``anonymous``), which :func:`open_mode` allows only on a loopback bind or with
``TASK_OPEN_API``. Open mode still checks what is presented: a signature must verify, and a
token that is not the task's notify token is 401, not ignored.

An open API on loopback is still reachable from the browser of the machine's user: any web
page may post to ``127.0.0.1``, and a DNS name rebound to ``127.0.0.1`` makes the page
same-origin. :class:`BrowserGuard` closes both (open mode only; tokens are never sent by a
browser on its own): a request must name a loopback ``Host`` and carry no ``Origin`` but the
API's own, else it is 403 before its body is read.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import falcon
from falcon.constants import HTTP_METHODS

from taskscheduler.api.media import raw_body
from taskscheduler.settings import ROLES, Settings
from taskscheduler.tasks.tokens import is_notify_token
from taskworker import signing
from taskworker.config import SettingsError
from taskworker.errors import Forbidden, Unauthorized

log = logging.getLogger(__name__)

RANK = {role: rank for rank, role in enumerate(ROLES)}
#: A ``Host`` header: a name or IPv4 address, or an IPv6 address in brackets; a port.
_HOST = re.compile(
    r"(?:\[(?P<v6>[0-9A-Fa-f:.]{2,45})\]|(?P<name>[^\s:@/\[\]]{1,253}))(?::[0-9]{1,5})?"
)


@dataclass(frozen=True, slots=True)
class Access:
    """What one request needs. ``role=None``: anyone (health, the OpenAPI document)."""

    role: str | None
    #: A request signed with the worker secret is accepted too.
    worker: bool = False
    #: This task's notify token is accepted too.
    notify_task: int | None = None


OPEN = Access(None)
VIEWER = Access("viewer")
OPERATOR = Access("operator")
ADMIN = Access("admin")
#: What workers send about themselves (register, heartbeat, logs); admins may stand in.
WORKER_OR_ADMIN = Access("admin", worker=True)


class Guarded:
    """Base of the resources: the access each method needs, admin for anything unlisted."""

    ACCESS: ClassVar[dict[str, Access]] = {}

    def access(self, req: falcon.Request, params: dict[str, Any]) -> Access:
        return self.ACCESS.get(req.method, ADMIN)


def open_mode(settings: Settings) -> bool:
    """Whether the API runs without tokens; raises when that would expose it."""
    if settings.tokens:
        return False
    if not (settings.open_api or _is_loopback(settings.bind)):
        raise SettingsError(
            "TASK_API_TOKENS",
            f"no tokens are configured and {settings.bind} is not a loopback address; "
            "set tokens, bind to 127.0.0.1, or set TASK_OPEN_API=true for local use",
        )
    log.warning("the API is open: no TASK_API_TOKENS are configured (bound to %s)", settings.bind)
    return True


def _is_loopback(bind: str) -> bool:
    if bind.startswith("unix:"):
        return True
    host = bind.rsplit(":", 1)[0] if bind.count(":") == 1 or "]" in bind else bind
    return _loopback_name(host.strip("[]"))


def _loopback_name(host: str) -> bool:
    """``localhost``, or an address in 127.0.0.0/8 or ``::1``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BrowserGuard:
    """Middleware of an open API, first after the metrics: refuses what a browser sends on
    a web page's behalf (DESIGN §8.2).

    A page elsewhere posts with its own ``Origin``; a page on a rebound DNS name sends that
    name as ``Host``. Either is 403 before the body is read. A request claiming a worker
    signature passes on: no page can compute one, and it must verify further on.
    """

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if signing.is_signed(req.headers):
            return
        host = req.get_header("Host") or ""
        found = _HOST.fullmatch(host)
        if found is None or not _loopback_name(found.group("v6") or found.group("name")):
            raise Forbidden(
                f"Host {host[:100]!r} is not a loopback name; without TASK_API_TOKENS the API "
                "answers only requests to localhost, 127.0.0.1 or [::1]"
            )
        origin = req.get_header("Origin")
        own = host.lower()
        if origin is not None and origin.lower() not in (f"http://{own}", f"https://{own}"):
            raise Forbidden(
                f"Origin {origin[:100]!r} is not this API's own; without TASK_API_TOKENS the "
                "API refuses requests that web pages send on another site's behalf"
            )


class Authenticator:
    """Middleware; runs after :class:`~taskscheduler.api.media.BodyReader` (signatures)."""

    def __init__(self, settings: Settings, *, is_open: bool) -> None:
        self._tokens = settings.tokens
        self._secret = settings.worker_secret
        self._open = is_open

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict[str, Any]
    ) -> None:
        if resource is None:
            return
        _require_served(req, resource)
        req.context.actor, req.context.role = self.caller(req, resource.access(req, params))

    def caller(self, req: falcon.Request, access: Access) -> tuple[str, str | None]:
        """The caller's name (for the records) and role: ``viewer``, ``operator`` or
        ``admin`` for a bearer token (admin in open mode, where nobody is told apart), None
        for a worker's signature or a task's notify token."""
        if access.role is None:
            return "anonymous", None
        if signing.is_signed(req.headers):
            return self._worker(req, access), None
        token = _bearer(req)
        if token is None and access.notify_task is not None:
            token = req.get_param("token")
        if token is not None:
            role = self._role(token)
            if role is not None:
                if RANK[role] < RANK[access.role]:
                    raise Forbidden(f"the {role} role may not do this; it needs {access.role}")
                return f"{role}:{hashlib.sha256(token.encode()).hexdigest()[:8]}", role
            task = access.notify_task
            if task is not None and is_notify_token(self._secret, task, token):
                return "notify-token", None
            raise Unauthorized("unknown token")  # open or not: a wrong token is never ignored
        if self._open:
            return "anonymous", "admin"
        raise Unauthorized("a bearer token is required")

    def _worker(self, req: falcon.Request, access: Access) -> str:
        if not access.worker:
            raise Forbidden("signed worker requests are not accepted here; use a bearer token")
        if not self._secret:
            raise Unauthorized("no TASK_WORKER_SECRET is configured to verify signatures")
        target = f"{req.path}?{req.query_string}" if req.query_string else req.path
        name = signing.verify(self._secret, req.method, target, raw_body(req), req.headers)
        return f"worker:{name or 'unnamed'}"

    def _role(self, token: str) -> str | None:
        """Compare with every configured token in constant time (no early exit on a match)."""
        found = None
        for known, role in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.encode(errors="replace")):
                found = role
        return found


def _require_served(req: falcon.Request, resource: Any) -> None:
    """405 (with ``Allow``) for a method the resource has no responder for, whatever its name:
    before credentials, so an unknown method is never mistaken for a missing token."""
    if req.method in HTTP_METHODS and hasattr(resource, f"on_{req.method.lower()}"):
        return
    allowed = [m for m in HTTP_METHODS if hasattr(resource, f"on_{m.lower()}")]
    raise falcon.HTTPMethodNotAllowed(
        allowed, description=f"{req.method[:20]!r} is not served here; {', '.join(allowed)} is"
    )


def _bearer(req: falcon.Request) -> str | None:
    header = req.get_header("Authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return value.strip()
