"""Reading the LogDumper's rules file (``TASK_LOGDUMPER_RULES``), refused whole when wrong.

The file is a JSON list of ``{"name", "source", "pattern", "template", "dedup_seconds"?}``.
A bad rule stops the node at start with the rule and the field named
(``TASK_LOGDUMPER_RULES: rules[1].pattern: not a regular expression: ...``) rather than
letting it run without the rules an operator thinks it has.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from taskscheduler.logdumper.rules import Rule
from taskworker.config import SettingsError
from taskworker.contract.api import CreateBody
from taskworker.contract.fields import Name
from taskworker.errors import InvalidInput

SETTING = "TASK_LOGDUMPER_RULES"


class RuleSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    source: str
    pattern: str
    template: dict[str, Any]
    dedup_seconds: float | None = None


def load_rules(path: str) -> list[Rule]:
    try:
        raw = json.loads(Path(path).read_text())
    except OSError as exc:
        raise SettingsError(SETTING, f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise SettingsError(SETTING, f"{path} is not JSON: {exc}") from None
    if not isinstance(raw, list):
        raise SettingsError(SETTING, f"{path} must hold a list of rules")
    rules: list[Rule] = []
    for index, item in enumerate(raw):
        try:
            spec = msgspec.convert(item, RuleSpec)
            msgspec.convert(spec.template, CreateBody)  # the shape; params are checked per task
            if not (spec.template.get("create_info") or {}).get("task_type"):
                raise InvalidInput("template.create_info.task_type", "is required")
            rule = Rule.parse(
                spec.name, spec.source, spec.pattern, spec.template, spec.dedup_seconds
            )
        except msgspec.ValidationError as exc:
            raise SettingsError(SETTING, f"rules[{index}]: {exc}") from None
        except InvalidInput as exc:
            raise SettingsError(SETTING, f"rules[{index}].{exc.field}: {exc.detail}") from None
        if any(r.name == rule.name for r in rules):
            raise SettingsError(SETTING, f"rules[{index}].name: {rule.name!r} repeats")
        rules.append(rule)
    return rules
