"""JSON in and out of the wire shapes: one decoder whose errors name the field.

msgspec's errors carry the JSON path; :func:`decode` turns them into an
:class:`~taskworker.errors.InvalidInput` naming the field (``params.seconds``), which every
endpoint answers as a 400.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from taskworker.errors import InvalidInput

T = TypeVar("T")
#: msgspec's error suffix; a bad mapping key reads "at `key` in `$.path`".
_PATH = re.compile(r" - at `(?:key` in `)?\$(?P<path>[^`]*)`$")


def decode(data: bytes | str, shape: type[T], *, root: str = "body") -> T:
    """Decode and validate JSON into ``shape``; on failure name the offending field."""
    try:
        return msgspec.json.decode(data, type=shape)
    except msgspec.ValidationError as exc:
        raise _invalid(str(exc), root) from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(root or "body", f"not valid JSON ({exc})") from None


def convert(obj: Any, shape: type[T], *, root: str = "body") -> T:
    """Validate already-parsed JSON (e.g. a TOML table or a template) into ``shape``."""
    try:
        return msgspec.convert(obj, type=shape)
    except msgspec.ValidationError as exc:
        raise _invalid(str(exc), root) from None


def _invalid(message: str, root: str) -> InvalidInput:
    found = _PATH.search(message)
    path = found.group("path") if found else ""
    text = _PATH.sub("", message)
    unknown = re.match(r"Object contains unknown field `(?P<name>[^`]+)`", text)
    missing = re.match(r"Object missing required field `(?P<name>[^`]+)`", text)
    named = unknown or missing
    if named:
        path = f"{path}.{named.group('name')}"
    # An empty root names fields from the top (``params.seconds``), the whole value "body".
    field = f"{root}{path}" if root else (path.lstrip(".") or "body")
    return InvalidInput(field, text)


def encode(obj: Any) -> bytes:
    return msgspec.json.encode(obj)
