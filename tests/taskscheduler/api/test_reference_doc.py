"""docs/rest-api.md is exactly what the OpenAPI document renders to."""

from __future__ import annotations

from pathlib import Path

from taskscheduler.api.openapi.document import document
from taskscheduler.api.openapi.reference import render

DOC = Path(__file__).resolve().parents[3] / "docs" / "rest-api.md"


def test_the_rest_reference_is_generated_from_the_current_openapi_document():
    assert DOC.read_text() == render(), (
        "docs/rest-api.md is stale: "
        "run `python -m taskscheduler.api.openapi.reference > docs/rest-api.md`"
    )


def test_the_reference_names_every_operation_of_the_document():
    text = DOC.read_text()
    for path, methods in document("x")["paths"].items():
        for method in methods:
            assert f"## `{method.upper()} {path}`" in text
