"""docs/rest-api.md, rendered from the OpenAPI document so the two can never disagree.

``python -m taskscheduler.api.openapi.reference > docs/rest-api.md`` writes it; a test fails when
the committed file differs from what this renders.
"""

from __future__ import annotations

from typing import Any

from taskscheduler.api.openapi.document import document

HEADER = """# REST API reference

Generated from `GET /openapi.json` (`python -m taskscheduler.api.openapi.reference`); do not edit
by hand. Every body is JSON. Errors are `{"title", "description"}`, plus `field` for 400.
Authentication: `Authorization: Bearer <token>` with a role (viewer < operator < admin);
worker endpoints also accept an HMAC-signed request (see the worker contract); `notify`,
`progress` and `heartbeat` also accept the task's own notify token. A node without tokens
(loopback only) requires none.

Bounds, each a 400 naming the field: `deadline_second` and `lock_timeout` at most 366 days;
`interval_second` from 1 s to 366 days; `important_level` an integer from 0 to 9 (`7.0` is
7, as JSON Schema has it); times in the years 0002 to 9998; a page at most 1,000 items; a
topology at most `TASK_TOPOLOGY_MAX_NODES` (1,000) tasks, nested nodes and fan-out targets
counted, and one create as many targets. Ids run from 1 to 2^63 - 1: a larger one names
nothing (404). A request line longer than the HTTP server takes (4094 bytes) is 414.
"""


def _schema_name(content: dict[str, Any] | None) -> str:
    if not content:
        return ""
    media: dict[str, Any] = content.get("application/json") or next(iter(content.values()))
    schema: dict[str, Any] = media.get("schema", {})
    choices = schema.get("oneOf") or schema.get("anyOf") or [schema]
    names = []
    for choice in choices:
        ref = choice.get("$ref") or choice.get("items", {}).get("$ref", "")
        name = ref.rsplit("/", 1)[-1] if ref else choice.get("type", "")
        if name:
            names.append(f"`{name}`")
    return " or ".join(names)


def _parameters(op: dict[str, Any]) -> list[str]:
    rows = []
    for p in op.get("parameters", []):
        kind = p.get("schema", {}).get("type", "")
        enum = p.get("schema", {}).get("enum")
        kind = " \\| ".join(f"`{v}`" for v in enum) if enum else kind
        needed = "required" if p.get("required") else "optional"
        rows.append(
            f"| `{p['name']}` | {p['in']} | {kind} | {needed} | {p.get('description', '')} |"
        )
    return rows


def render() -> str:
    doc = document("reference")
    lines = [HEADER]
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            lines.append(f"## `{method.upper()} {path}`\n")
            lines.append(f"{op.get('summary', '')}\n")
            role = op.get("x-role")
            lines.append(f"Role: {role or 'none (open)'}.\n")
            params = _parameters(op)
            if params:
                lines.append("| parameter | in | type | | meaning |\n|---|---|---|---|---|")
                lines.extend(params)
                lines.append("")
            body = _schema_name(op.get("requestBody", {}).get("content"))
            if body:
                lines.append(f"Body: {body}.\n")
            lines.append("| status | meaning | body |\n|---|---|---|")
            for code, answer in op.get("responses", {}).items():
                shape = _schema_name(answer.get("content"))
                lines.append(f"| {code} | {answer.get('description', '')} | {shape} |")
            lines.append("")
    lines.append("## Schemas\n")
    for name, schema in doc["components"]["schemas"].items():
        fields = ", ".join(f"`{f}`" for f in schema.get("properties", {}))
        required = ", ".join(f"`{f}`" for f in schema.get("required", []))
        values = ", ".join(f"`{v}`" for v in schema.get("enum", []))  # an enum's values
        lines.append(
            f"- `{name}`: {fields or values or schema.get('type', '')}"
            + (f" (required: {required})" if required else "")
        )
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
