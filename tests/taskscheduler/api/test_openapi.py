"""/openapi.json describes exactly the routes and methods the app serves."""

from __future__ import annotations

import re
from typing import Any

import falcon.inspect

from taskscheduler.api.openapi.document import document
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


def test_with_tokens_the_document_requires_them_and_names_the_alternatives(sqlite_api: Api):
    # Given a node with tokens
    document = sqlite_api.call("GET", "/openapi.json", role=None).json
    paths = document["paths"]
    # Then reading needs a bearer token, a worker's report also takes its signature, a
    # task's report its notify token, and health and the document itself need nothing
    assert paths["/v1/tasks"]["get"]["security"] == [{"bearer": []}]
    assert paths["/v1/reports"]["post"]["security"] == [{"bearer": []}, {"workerSignature": []}]
    assert paths["/v1/task/{task_type}"]["put"]["security"] == [
        {"bearer": []},
        {"workerSignature": []},
        {"notifyToken": []},
    ]
    assert paths["/health"]["get"]["security"] == []
    assert "401" in paths["/v1/tasks"]["get"]["responses"]
    # ...and the node answers as the document says: no token, 401
    assert sqlite_api.call("GET", "/v1/tasks", role=None).status_code == 401


def test_an_open_node_documents_no_credentials_as_required():
    # Given the document an open node serves (no tokens, loopback only)
    paths = document("open", is_open=True)["paths"]
    # Then no operation requires credentials, and every one may still refuse (403: a request
    # a browser sends for another site; 401: a bad signature or token presented)
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert operation["security"] in ([], [{}]), (method, path)
            assert "403" in operation["responses"], (method, path)


def test_answers_of_several_shapes_are_any_of_them_not_exactly_one():
    # Given the query answer, whose shapes overlap (a whole task is also a valid progress)
    get = document("x")["paths"]["/v1/task/{task_type}"]["get"]
    schema = get["responses"]["200"]["content"]["application/json"]["schema"]
    # Then the document says "any of" them: "one of" would refuse every whole task
    assert "oneOf" not in schema
    assert {"$ref": "#/components/schemas/TaskView"} in schema["anyOf"]


def test_the_documents_bounds_are_the_servers(sqlite_api: Api):
    schemas = document("x")["components"]["schemas"]
    arg = schemas["ProcessArg"]["properties"]
    info = schemas["CreateInfo"]["properties"]
    # Then the bounds the server checks are the document's
    assert arg["deadline_second"]["anyOf"][0]["maximum"] == 366 * 24 * 3600
    assert arg["lock_timeout"]["maximum"] == 366 * 24 * 3600
    interval = schemas["TriggerBody"]["properties"]["interval_second"]["anyOf"][0]
    assert (interval["minimum"], interval["maximum"]) == (1, 366 * 24 * 3600)
    assert (info["important_level"]["minimum"], info["important_level"]["maximum"]) == (0, 9)
    assert schemas["CreateBatch"]["properties"]["tasks"]["minItems"] == 1
    assert schemas["TopologyBody"]["properties"]["nodes"]["minItems"] == 1
    # ...a client never sets control_task_id, and the document does not let it
    assert info["control_task_id"]["type"] == "null"
    limit = next(
        p for p in document("x")["paths"]["/v1/tasks"]["get"]["parameters"] if p["name"] == "limit"
    )
    assert limit["schema"]["maximum"] == 1000
    # And what the document allows, the server takes: 1.0 is the integer 1 to JSON Schema
    created = sqlite_api.call(
        "POST",
        "/v1/task/sleep",
        json={"params": {"seconds": 1}, "create_info": {"important_level": 7.0}},
    )
    assert created.status_code == 201, created.text
    assert created.json["important_level"] == 7
    # ...while what it refuses, the server refuses, naming the field
    refused = sqlite_api.call(
        "POST",
        "/v1/task/sleep",
        json={"params": {"seconds": 1}, "create_info": {"important_level": 7.5}},
    )
    assert (refused.status_code, refused.json["field"]) == (400, "create_info.important_level")
    empty = sqlite_api.call("POST", "/v1/tasks", json={"tasks": []})
    assert (empty.status_code, empty.json["field"]) == (400, "tasks")
