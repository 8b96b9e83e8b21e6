"""``/openapi.json``: the whole API as OpenAPI 3.1, built from the same structs it speaks.

Schemas come from the msgspec structs with ``msgspec.json.schema_components``, so a field
added to a struct appears in the document without anyone editing it, with the bounds the
server checks. The operations are the table in :mod:`taskscheduler.api.openapi.operations`;
a test walks falcon's router and fails when a route or method is missing there, or listed
there but not served, and a fuzzer holds every answer of a running node to the document.

The document tells the truth of the node serving it: with ``TASK_API_TOKENS`` a bearer
token (or, where workers report, a worker's signature; for a task's reports, its notify
token) is required; an open node (no tokens, loopback only) needs none, and says so.
"""

from __future__ import annotations

import re
from typing import Any

import falcon
import msgspec

from taskscheduler.api.auth import OPEN, Guarded
from taskscheduler.api.openapi.operations import (
    AUTH_ERRORS,
    ERRORS,
    OPERATIONS,
    URI_TOO_LONG,
    Op,
)
from taskworker.contract.api import ErrorBody


def document(version: str, *, is_open: bool = False) -> dict[str, Any]:
    """The OpenAPI 3.1 document for :data:`OPERATIONS`, as a node with tokens (``is_open``
    False) or an open node serves them."""
    shapes = _shapes()
    schemas, components = msgspec.json.schema_components(
        shapes, ref_template="#/components/schemas/{name}"
    )
    ref = dict(zip(map(repr, shapes), schemas, strict=True))
    _tighten(components)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, ref, is_open)
    return {
        "openapi": "3.1.0",
        "info": {"title": "TaskScheduler API", "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "workerSignature": {"type": "apiKey", "in": "header", "name": "X-Task-Signature"},
                "notifyToken": {"type": "apiKey", "in": "query", "name": "token"},
            },
        },
    }


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _shapes() -> list[Any]:
    found: list[Any] = [ErrorBody]
    for op in OPERATIONS:
        for shape in [*_listed(op.answer), *_listed(op.body), *op.extra.values()]:
            if not isinstance(shape, dict) and shape not in found:
                found.append(shape)
    return found


def _schema(value: Any, ref: dict[str, Any]) -> dict[str, Any]:
    # anyOf, not oneOf: the shapes may overlap (a task view is also a valid progress), and
    # the answer is one of them, whichever else it also matches
    if isinstance(value, list):
        return {"anyOf": [_schema(item, ref) for item in value]}
    return value if isinstance(value, dict) else dict(ref[repr(value)])


def _content(value: Any, ref: dict[str, Any], media: str = falcon.MEDIA_JSON) -> dict[str, Any]:
    return {media: {"schema": _schema(value, ref)}}


def _security(op: Op, is_open: bool) -> list[dict[str, list[str]]]:
    """Who may call ``op``: anyone on an open node (an empty requirement); else a bearer
    token, or the alternatives the operation also takes."""
    role, _, extra = op.access.partition("+")
    if role == "open":
        return []
    if is_open:
        return [{}]
    schemes = ["bearer", *(["workerSignature"] if "worker" in extra else [])]
    schemes += ["notifyToken"] if "notify" in extra else []
    return [{scheme: []} for scheme in schemes]


def _operation(op: Op, ref: dict[str, Any], is_open: bool) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": "OK"}
    if op.answer is not None:
        answer["content"] = _content(op.answer, ref, op.media)
    responses: dict[str, Any] = {str(op.ok): answer}
    for status, shape in op.extra.items():
        responses[status] = {"description": "OK", "content": _content(shape, ref)}
    role = op.access.partition("+")[0]
    # an open node still refuses bad signatures and tokens (401) and what browsers send for
    # other sites (403), on every route
    auth = AUTH_ERRORS if role != "open" else (403,) if is_open else ()
    bodies = (413, 415) if op.body is not None else ()
    errors = (*op.errors, *auth, *bodies, 503)
    for status in sorted(set(errors)):
        responses[str(status)] = {
            "description": ERRORS[status],
            "content": _content(ErrorBody, ref),
        }
    # the HTTP server's own refusal, before the API sees the request: not JSON
    responses["414"] = {
        "description": URI_TOO_LONG,
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
    built: dict[str, Any] = {
        "summary": op.summary,
        "operationId": _operation_id(op),
        "parameters": [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required,
                "schema": p.schema,
                "description": p.description,
            }
            for p in op.params
        ],
        "responses": responses,
        "security": _security(op, is_open),
        "x-role": role,
    }
    if op.body is not None:
        built["requestBody"] = {"required": _required(op.body), "content": _content(op.body, ref)}
    return built


def _required(body: Any) -> bool:
    """Whether a body must be sent: an empty body reads as ``{}``, which a shape with a
    required field refuses."""
    if not (isinstance(body, type) and issubclass(body, msgspec.Struct)):
        return False
    return any(f.required for f in msgspec.structs.fields(body))


def _tighten(schemas: dict[str, Any]) -> None:
    """What a shape allows but the public API never takes: ``control_task_id`` is set by the
    scheduler on the children of a topology or fan-out, never by a client."""
    info = schemas["CreateInfo"]["properties"]
    info["control_task_id"] = {
        "type": "null",
        "default": None,
        "description": "set by the scheduler on the children of a topology or fan-out",
    }


def _operation_id(op: Op) -> str:
    words = re.findall(r"[a-z0-9]+", op.path.replace(".json", ""))
    return "_".join([op.method.lower(), *words])


class OpenAPIResource(Guarded):
    ACCESS = {"GET": OPEN}

    def __init__(self, version: str, *, is_open: bool = False) -> None:
        self._data = msgspec.json.encode(document(version, is_open=is_open))

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._data
