"""LogDumper rules: which lines of which files make which tasks.

A rule names a file glob, a regular expression, and a task template (a create body) whose
strings may use the expression's named groups as ``{name}``. With a dedup window, the task's
``idempotency_key`` is derived from the rendered body and the window the line falls in, so
the unique index on idempotency keys drops repeats within a window — across restarts and
across scheduler nodes, with nothing kept in memory.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from taskworker.errors import InvalidInput


@dataclass(frozen=True)
class Rule:
    name: str
    source: str
    pattern: re.Pattern[str]
    template: dict[str, Any]
    dedup_seconds: float | None = None

    @classmethod
    def parse(
        cls,
        name: str,
        source: str,
        pattern: str,
        template: dict[str, Any],
        dedup_seconds: float | None = None,
    ) -> Rule:
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise InvalidInput("pattern", f"not a regular expression: {exc}") from None
        groups = set(compiled.groupindex)
        for path, text in _strings(template, "template"):
            for field in re.findall(r"{(\w+)}", text):
                if field not in groups:
                    raise InvalidInput(path, f"{{{field}}} is not a named group of the pattern")
        if dedup_seconds is not None and dedup_seconds <= 0:
            raise InvalidInput("dedup_seconds", "must be positive")
        return cls(name, source, compiled, template, dedup_seconds)

    def task_for(self, line: str, at: datetime) -> dict[str, Any] | None:
        """The create body ``line`` makes, or None when it does not match."""
        found = self.pattern.search(line)
        if found is None:
            return None
        values = {k: v or "" for k, v in found.groupdict().items()}
        body: dict[str, Any] = _render(self.template, values)
        if self.dedup_seconds is not None:
            window = int(at.timestamp() // self.dedup_seconds)
            digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]
            body.setdefault("create_info", {})["idempotency_key"] = (
                f"logdumper:{self.name}:{window}:{digest}"
            )
        return body


def _strings(value: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in _strings(v, f"{path}[{i}]")]
    return []


def _render(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        return re.sub(r"{(\w+)}", lambda m: values[m.group(1)], value)
    if isinstance(value, dict):
        return {k: _render(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, values) for v in value]
    return value
