"""Query parameters, parsed so that a bad one is a 400 naming it (never a 500, never ignored).

Falcon's ``get_param_as_int`` raises its own error without our ``field``; these helpers
raise :class:`~taskworker.errors.InvalidInput` with the parameter's name, like body fields.
Every number is bounded: an integer the database cannot hold (past 2^63 - 1) would
otherwise reach the driver and fail there. An id past that range names nothing, so it is
404, as an unknown id is (:func:`identifier`).
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

import falcon
import msgspec

from taskscheduler.tasks.read import DEFAULT_LIMIT, MAX_LIMIT
from taskworker.contract.fields import MAX_ID, TASK_TYPE_PATTERN, AwareTime, check_time
from taskworker.errors import InvalidInput, NotFound

E = TypeVar("E", bound=StrEnum)
V = TypeVar("V")

#: Longest free-text parameter (names, reasons) accepted.
MAX_TEXT_LENGTH = 1024
_INTEGER = re.compile(r"-?[0-9]+")
_TASK_TYPE = re.compile(TASK_TYPE_PATTERN)
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def require(value: V | None, name: str) -> V:
    """A missing required parameter is a 400 naming it, like a malformed one."""
    if value is None:
        raise InvalidInput(name, "is required")
    return value


def text(req: falcon.Request, name: str) -> str | None:
    """Free text; given empty it counts as not given."""
    return _raw(req, name) or None


def _raw(req: falcon.Request, name: str) -> str | None:
    """The parameter as sent, None when absent. Given twice it is a 400: which one was meant
    is not ours to guess (the document describes one value, not a list)."""
    value = req.params.get(name)
    if isinstance(value, list):
        raise InvalidInput(name, "is given more than once")
    if value is not None and len(value) > MAX_TEXT_LENGTH:
        raise InvalidInput(name, f"is longer than {MAX_TEXT_LENGTH} characters")
    return value


def integer(
    req: falcon.Request,
    name: str,
    *,
    minimum: int = 0,
    maximum: int = MAX_ID,
) -> int | None:
    value = _integer(req, name)
    if value is not None and not minimum <= value <= maximum:
        raise InvalidInput(name, f"must be at least {minimum} and at most {maximum}")
    return value


def identifier(req: falcon.Request, name: str, kind: str = "task") -> int | None:
    """An id (1 to 2^63 - 1): a larger one names no ``kind``, so it is 404, never a 500."""
    value = _integer(req, name)
    if value is None:
        return None
    if value < 1:
        raise InvalidInput(name, "must be at least 1")
    if value > MAX_ID:
        raise NotFound(kind, value)
    return value


def task_type(value: str) -> str:
    """A task type from the path: one its pattern refuses names no type, so it is 404."""
    if not _TASK_TYPE.fullmatch(value):
        raise NotFound("task type", value[:100])
    return value


def _integer(req: falcon.Request, name: str) -> int | None:
    raw = _raw(req, name)
    if raw is None:
        return None
    # ASCII digits only: int() also takes "1_000", " 7" and other scripts' digits
    if not _INTEGER.fullmatch(raw):
        raise InvalidInput(name, f"{raw!r} is not an integer")
    return int(raw)


def seconds(req: falcon.Request, name: str, *, maximum: float) -> float | None:
    """A duration in seconds, fractions allowed, from 0 to ``maximum``."""
    raw = _raw(req, name)
    if raw is None:
        return None
    if not _NUMBER.fullmatch(raw):  # float() would also take " 5", "1_0" and "inf"
        raise InvalidInput(name, f"{raw!r} is not a number of seconds")
    value = float(raw)
    if not 0 <= value <= maximum:  # also refuses nan
        raise InvalidInput(name, f"must be from 0 to {maximum:g} seconds")
    return value


def choice(req: falcon.Request, name: str, kind: type[E]) -> E | None:
    raw = _raw(req, name)
    if raw is None:
        return None
    try:
        return kind(raw)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidInput(name, f"{raw!r} is not one of {allowed}") from None


def timestamp(req: falcon.Request, name: str) -> datetime | None:
    """An RFC 3339 time with its zone, read as body times are (and in the same years)."""
    raw = _raw(req, name)
    if raw is None:
        return None
    try:
        value = msgspec.convert(raw, AwareTime)
        check_time(name, value)
    except msgspec.ValidationError as exc:
        raise InvalidInput(name, f"{raw!r} is not an RFC 3339 time with a zone ({exc})") from None
    except ValueError as exc:
        raise InvalidInput(name, str(exc).partition(": ")[2]) from None
    return value


def limit(req: falcon.Request) -> int:
    found = integer(req, "limit", minimum=1, maximum=MAX_LIMIT)
    return DEFAULT_LIMIT if found is None else found


def cursor(req: falcon.Request) -> int | None:
    """The previous page's ``next_cursor``: a position, so one past every id is a 400."""
    return integer(req, "cursor", minimum=1)
