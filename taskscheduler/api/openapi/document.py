"""``/openapi.json``: the whole API as OpenAPI 3.1, built from the same structs it speaks.

Schemas come from the msgspec structs with ``msgspec.json.schema_components``, so a field
added to a struct appears in the document without anyone editing it. The operations are the
table in :mod:`taskscheduler.api.openapi.operations`; a test walks falcon's router and fails when a
route or method is missing there, or listed there but not served.
"""

from __future__ import annotations

import re
from typing import Any

import falcon
import msgspec

from taskscheduler.api.auth import OPEN, Guarded
from taskscheduler.api.openapi.operations import AUTH_ERRORS, ERRORS, OPERATIONS, Op
from taskworker.contract.api import ErrorBody


def document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document for :data:`OPERATIONS`."""
    shapes = _shapes()
    schemas, components = msgspec.json.schema_components(
        shapes, ref_template="#/components/schemas/{name}"
    )
    ref = dict(zip(map(repr, shapes), schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, ref)
    return {
        "openapi": "3.1.0",
        "info": {"title": "TaskScheduler API", "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "workerSignature": {"type": "apiKey", "in": "header", "name": "X-Task-Signature"},
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
    if isinstance(value, list):
        return {"oneOf": [_schema(item, ref) for item in value]}
    return value if isinstance(value, dict) else dict(ref[repr(value)])


def _content(value: Any, ref: dict[str, Any], media: str = falcon.MEDIA_JSON) -> dict[str, Any]:
    return {media: {"schema": _schema(value, ref)}}


def _operation(op: Op, ref: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": "OK"}
    if op.answer is not None:
        answer["content"] = _content(op.answer, ref, op.media)
    responses: dict[str, Any] = {str(op.ok): answer}
    for status, shape in op.extra.items():
        responses[status] = {"description": "OK", "content": _content(shape, ref)}
    role, _, worker = op.access.partition("+")
    errors = (*op.errors, *(() if role == "open" else AUTH_ERRORS), 503)
    for status in sorted(set(errors)):
        responses[str(status)] = {
            "description": ERRORS[status],
            "content": _content(ErrorBody, ref),
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
        "security": []
        if role == "open"
        else [{"bearer": []}, *([{"workerSignature": []}] if worker else [])],
        "x-role": role,
    }
    if op.body is not None:
        built["requestBody"] = {"required": False, "content": _content(op.body, ref)}
    return built


def _operation_id(op: Op) -> str:
    words = re.findall(r"[a-z0-9]+", op.path.replace(".json", ""))
    return "_".join([op.method.lower(), *words])


class OpenAPIResource(Guarded):
    ACCESS = {"GET": OPEN}

    def __init__(self, version: str) -> None:
        self._data = msgspec.json.encode(document(version))

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._data
