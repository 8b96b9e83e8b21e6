"""JSON in and out of the wire shapes: one decoder whose errors name the field.

msgspec's errors carry the JSON path; :func:`decode` turns them into an
:class:`~taskworker.errors.InvalidInput` naming the field (``params.seconds``), which every
endpoint answers as a 400.

JSON has numbers, not integers and floats: ``1.0`` is the integer 1 to JSON Schema, and so
to the OpenAPI document and its clients. msgspec refuses a float where a shape wants an int,
so a body it refuses for that alone is decoded again with each whole float standing where an
int is wanted made an int (:func:`_whole_numbers`); ``1.5`` there is still refused. The
second pass costs only the requests that need it.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
import msgspec.inspect as mi

from taskworker.errors import InvalidInput

T = TypeVar("T")
#: msgspec's error suffix; a bad mapping key reads "at `key` in `$.path`".
_PATH = re.compile(r" - at `(?:key` in `)?\$(?P<path>[^`]*)`$")


#: msgspec's message for a float where an int (or an int or null, ...) is wanted.
_FLOAT_FOR_INT = re.compile(r"Expected `[^`]*\bint\b[^`]*`, got `float`")


def decode(data: bytes | str, shape: type[T], *, root: str = "body") -> T:
    """Decode and validate JSON into ``shape``; on failure name the offending field."""
    try:
        return msgspec.json.decode(data, type=shape)
    except msgspec.ValidationError as exc:
        if not _FLOAT_FOR_INT.match(str(exc)):
            raise _invalid(str(exc), root) from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(root or "body", f"not valid JSON ({exc})") from None
    return convert(msgspec.json.decode(data), shape, root=root)


def convert(obj: Any, shape: type[T], *, root: str = "body") -> T:
    """Validate already-parsed JSON (e.g. a TOML table or a template) into ``shape``."""
    try:
        return msgspec.convert(obj, type=shape)
    except msgspec.ValidationError as exc:
        if not _FLOAT_FOR_INT.match(str(exc)):
            raise _invalid(str(exc), root) from None
    try:
        return msgspec.convert(_whole_numbers(obj, mi.type_info(shape)), type=shape)
    except msgspec.ValidationError as exc:
        raise _invalid(str(exc), root) from None


def _whole_numbers(obj: Any, kind: mi.Type) -> Any:
    """``obj`` with each whole float (``3.0``) where ``kind`` wants an int made that int;
    values of any other kind, and free-form ones (``params``), are left as they are."""
    kind = _bare(kind)
    if isinstance(obj, float):
        members = [_bare(k) for k in (kind.types if isinstance(kind, mi.UnionType) else (kind,))]
        wants_int = any(isinstance(k, mi.IntType) for k in members)
        takes_float = any(isinstance(k, mi.FloatType) for k in members)
        return int(obj) if wants_int and not takes_float and obj.is_integer() else obj
    if isinstance(kind, mi.UnionType):
        return _whole_numbers(obj, _member(obj, kind))
    if isinstance(obj, list) and isinstance(kind, mi.ListType):
        return [_whole_numbers(item, kind.item_type) for item in obj]
    if isinstance(obj, dict) and isinstance(kind, mi.DictType):
        return {key: _whole_numbers(value, kind.value_type) for key, value in obj.items()}
    if isinstance(obj, dict) and isinstance(kind, mi.StructType):
        fields = {f.encode_name: f.type for f in kind.fields}
        return {
            key: _whole_numbers(value, fields[key]) if key in fields else value
            for key, value in obj.items()
        }
    return obj


def _member(obj: Any, union: mi.UnionType) -> mi.Type:
    """The member of ``union`` that a list or an object (by its tag, if any) decodes as."""
    for kind in union.types:
        bare = _bare(kind)
        if isinstance(obj, list) and isinstance(bare, mi.ListType):
            return bare
        if isinstance(obj, dict) and isinstance(bare, mi.DictType):
            return bare
        if (
            isinstance(obj, dict)
            and isinstance(bare, mi.StructType)
            and (bare.tag_field is None or obj.get(bare.tag_field) == bare.tag)
        ):
            return bare
    return mi.AnyType()


def _invalid(message: str, root: str) -> InvalidInput:
    found = _PATH.search(message)
    path = found.group("path") if found else ""
    text = _PATH.sub("", message)
    unknown = re.match(r"Object contains unknown field `(?P<name>[^`]+)`", text)
    missing = re.match(r"Object missing required field `(?P<name>[^`]+)`", text)
    # a shape's own check (``__post_init__``, see fields.check_time) names its field so
    invalid = re.match(r"Invalid field `(?P<name>[^`]+)`", text)
    named = unknown or missing or invalid
    if named:
        path = f"{path}.{named.group('name')}"
    # An empty root names fields from the top (``params.seconds``), the whole value "body".
    field = f"{root}{path}" if root else (path.lstrip(".") or "body")
    return InvalidInput(field, text)


def encode(obj: Any) -> bytes:
    return msgspec.json.encode(obj)


def _bare(kind: mi.Type) -> mi.Type:
    """The type under its constraints (``Annotated[int, Meta(...)]`` is an int)."""
    while isinstance(kind, mi.Metadata):
        kind = kind.type
    return kind
