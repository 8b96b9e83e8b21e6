"""Every topology and trigger the documentation and examples/ print is accepted as printed
by the real API, with the shipped plugins' schemas registered as their worker would."""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec
import pytest

from taskworker.discovery import discover
from taskworker.registration import registration
from tests.taskscheduler.api.harness import Api

ROOT = Path(__file__).resolve().parents[3]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def printed() -> list[tuple[str, dict]]:
    found = []
    for document in DOCUMENTS:
        for index, block in enumerate(
            re.findall(r"```json\n(.*?)```", document.read_text(), re.DOTALL)
        ):
            body = json.loads(block)
            if isinstance(body, dict) and ("nodes" in body or "template" in body):
                found.append((f"{document.name}#{index}", body))
    found += [
        (p.name, json.loads(p.read_text())) for p in sorted((ROOT / "examples").glob("*.json"))
    ]
    return found


@pytest.fixture
def shipped(sqlite_api: Api) -> Api:
    entry = registration("shipped", "http://127.0.0.1:9", 4, discover(entry_points=False).types)
    answer = sqlite_api.signed(
        "POST", "/v1/workers", json=msgspec.to_builtins(entry), worker="shipped"
    )
    assert answer.status_code == 201, answer.text
    return sqlite_api


@pytest.mark.parametrize(("where", "body"), printed(), ids=[w for w, _ in printed()])
def test_a_printed_definition_is_accepted_by_the_api(shipped: Api, where: str, body: dict):
    path = "/v1/topology" if "nodes" in body else "/v1/triggers"
    # as an admin: the printed examples run shell commands, which only an admin may submit
    result = shipped.call("POST", path, json=body, role="admin")
    assert result.status_code == 201, (where, result.text)


def test_every_kind_of_definition_is_printed_somewhere():
    kinds = {("nodes" in body, body.get("kind")) for _, body in printed()}
    assert (True, None) in kinds and (False, "timed") in kinds
