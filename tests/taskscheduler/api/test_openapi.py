"""/openapi.json describes exactly the routes and methods the app serves."""

from __future__ import annotations

import re
from typing import Any

import falcon.inspect

from tests.taskscheduler.api.harness import Api


def served(app: falcon.App) -> set[tuple[str, str]]:
    """Every (path, method) falcon routes to a responder of ours, in OpenAPI path syntax."""
    found = set()
    for route in falcon.inspect.inspect_routes(app):
        path = re.sub(r"\{(\w+):[^}]*\}", r"{\1}", route.path)
        found |= {(path, m.method) for m in route.methods if not m.internal}
    return found


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, operations in document["paths"].items()
        for method in operations
    }


def test_every_route_and_method_is_documented_and_nothing_else(sqlite_api: Api):
    document = sqlite_api.call("GET", "/openapi.json", role=None).json
    assert documented(document) == served(sqlite_api.client.app)


def test_every_schema_reference_resolves(sqlite_api: Api):
    document = sqlite_api.call("GET", "/openapi.json", role=None).json
    text = str(document)
    names = set(re.findall(r"#/components/schemas/(\w+)", text))
    assert names
    assert names <= set(document["components"]["schemas"])


def test_the_document_is_openapi_3_1_with_path_parameters_declared(sqlite_api: Api):
    document = sqlite_api.call("GET", "/openapi.json", role=None).json
    assert document["openapi"] == "3.1.0"
    for path, operations in document["paths"].items():
        placeholders = set(re.findall(r"\{(\w+)\}", path))
        for operation in operations.values():
            declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert declared == placeholders, path
            assert operation["responses"]


def test_the_create_body_schema_is_the_contracts(sqlite_api: Api):
    document = sqlite_api.call("GET", "/openapi.json", role=None).json
    create = document["paths"]["/v1/task/{task_type}"]["post"]
    schema = create["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/CreateBody"}
    info = document["components"]["schemas"]["CreateInfo"]["properties"]
    assert "idempotency_key" in info
    assert set(create["responses"]) >= {"200", "201", "400", "401", "403", "404", "409", "503"}
