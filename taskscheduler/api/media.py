"""JSON in and out: the request body read within its size limit, msgspec both ways.

The body is read once, by :class:`BodyReader`, before authentication: a signed worker
request is verified over the exact bytes, and resources decode those same bytes with the
contract's structs (which name the bad field). Falcon's own media handlers are not used; a
decode through msgspec validates in the same pass.

Size is checked twice: from ``Content-Length`` before a byte is read, and while reading a
chunked body (which has none), so a client never makes the scheduler buffer more than
``max_body_bytes``. A body must be ``application/json`` (415 before it is read; a request
without a body needs no type) and nest at most 64 levels (400 naming ``body``, found by a
cheap scan before msgspec, whose recursion it would otherwise exhaust): the contract's body
rules, shared with the workers (:func:`taskworker.server.require_json`).
"""

from __future__ import annotations

from typing import Any, TypeVar

import falcon
import msgspec

from taskworker.contract.codec import decode
from taskworker.errors import PayloadTooLarge
from taskworker.server import check_nesting, require_json

T = TypeVar("T")

#: Chunked bodies are read in pieces of this size until the limit or the end.
READ_CHUNK_BYTES = 64 * 1024


class BodyReader:
    """Middleware: ``req.context.body`` holds the raw body, or the request gets 413."""

    def __init__(self, max_body_bytes: int) -> None:
        self._limit = max_body_bytes

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.body = b""
        length = req.content_length
        if length:
            if length > self._limit:
                raise PayloadTooLarge(self._limit)
            require_json(req.content_type)
            data = req.bounded_stream.read(length)
        elif length is None and req.env.get("wsgi.input_terminated"):
            data = self._read_chunked(req)
            if data:
                require_json(req.content_type)
        else:
            return
        check_nesting(data)
        req.context.body = data

    def _read_chunked(self, req: falcon.Request) -> bytes:
        parts: list[bytes] = []
        size = 0
        while chunk := req.stream.read(READ_CHUNK_BYTES):
            size += len(chunk)
            if size > self._limit:
                raise PayloadTooLarge(self._limit)
            parts.append(chunk)
        return b"".join(parts)


def body(req: falcon.Request, shape: type[T]) -> T:
    """The request body as ``shape``; an empty body counts as ``{}``."""
    return decode(req.context.body or b"{}", shape, root="")


def raw_body(req: falcon.Request) -> bytes:
    return bytes(req.context.body)


def reply(resp: falcon.Response, obj: Any, status: int = 200) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = msgspec.json.encode(obj)
