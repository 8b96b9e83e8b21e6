"""Query parameters, parsed so that a bad one is a 400 naming it (never a 500, never ignored).

Falcon's ``get_param_as_int`` raises its own error without our ``field``; these helpers
raise :class:`~taskworker.errors.InvalidInput` with the parameter's name, like body fields.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TypeVar

import falcon

from taskscheduler.tasks.read import DEFAULT_LIMIT, MAX_LIMIT
from taskworker.errors import InvalidInput

E = TypeVar("E", bound=StrEnum)
V = TypeVar("V")

#: Longest free-text parameter (names, reasons) accepted.
MAX_TEXT_LENGTH = 1024


def require(value: V | None, name: str) -> V:
    """A missing required parameter is a 400 naming it, like a malformed one."""
    if value is None:
        raise InvalidInput(name, "is required")
    return value


def text(req: falcon.Request, name: str) -> str | None:
    value = req.get_param(name)
    if value is None or value == "":
        return None
    if len(value) > MAX_TEXT_LENGTH:
        raise InvalidInput(name, f"is longer than {MAX_TEXT_LENGTH} characters")
    return str(value)


def integer(
    req: falcon.Request,
    name: str,
    *,
    minimum: int = 0,
    maximum: int | None = None,
) -> int | None:
    raw = text(req, name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(name, f"{raw!r} is not an integer") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" and at most {maximum}"
        raise InvalidInput(name, f"must be at least {minimum}{upper}")
    return value


def seconds(req: falcon.Request, name: str, *, maximum: float) -> float | None:
    """A duration in seconds, fractions allowed, from 0 to ``maximum``."""
    raw = text(req, name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(name, f"{raw!r} is not a number of seconds") from None
    if not 0 <= value <= maximum:  # also refuses nan
        raise InvalidInput(name, f"must be from 0 to {maximum:g} seconds")
    return value


def choice(req: falcon.Request, name: str, kind: type[E]) -> E | None:
    raw = text(req, name)
    if raw is None:
        return None
    try:
        return kind(raw)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidInput(name, f"{raw!r} is not one of {allowed}") from None


def timestamp(req: falcon.Request, name: str) -> datetime | None:
    raw = text(req, name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(name, f"{raw!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise InvalidInput(name, "needs a time zone, e.g. a trailing Z")
    return value


def limit(req: falcon.Request) -> int:
    found = integer(req, "limit", minimum=1, maximum=MAX_LIMIT)
    return DEFAULT_LIMIT if found is None else found


def cursor(req: falcon.Request) -> int | None:
    return integer(req, "cursor", minimum=1)
