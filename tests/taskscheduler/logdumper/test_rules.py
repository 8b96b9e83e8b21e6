"""LogDumper rules: matches become create bodies; bad rules name their field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from taskscheduler.logdumper.rules import Rule
from taskworker.errors import InvalidInput

TEMPLATE = {
    "create_info": {"task_type": "mysql_backup", "task_name": "backup after crash of {host}"},
    "params": {"instance": "{host}", "tags": ["crash", "{code}"]},
}
PATTERN = r"mysqld crashed on (?P<host>[\w-]+) code=(?P<code>\d+)"


def test_a_matching_line_fills_the_template_from_named_groups():
    rule = Rule.parse("crashes", "/var/log/*.log", PATTERN, TEMPLATE)
    body = rule.task_for("12:00 mysqld crashed on db-42 code=137", datetime.now(UTC))
    assert body == {
        "create_info": {"task_type": "mysql_backup", "task_name": "backup after crash of db-42"},
        "params": {"instance": "db-42", "tags": ["crash", "137"]},
    }
    assert rule.task_for("all quiet", datetime.now(UTC)) is None


def test_dedup_gives_repeats_within_a_window_one_idempotency_key():
    rule = Rule.parse("crashes", "*.log", PATTERN, TEMPLATE, dedup_seconds=300)
    at = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)
    line = "mysqld crashed on db-42 code=137"
    first = rule.task_for(line, at)["create_info"]["idempotency_key"]
    assert (
        rule.task_for(line, at + timedelta(seconds=60))["create_info"]["idempotency_key"] == first
    )
    assert (
        rule.task_for(line, at + timedelta(seconds=600))["create_info"]["idempotency_key"] != first
    )
    other = rule.task_for("mysqld crashed on db-7 code=137", at)["create_info"]["idempotency_key"]
    assert other != first


@pytest.mark.parametrize(
    ("pattern", "template", "dedup", "field"),
    [
        ("(unclosed", TEMPLATE, None, "pattern"),
        (r"(?P<host>\w+)", TEMPLATE, None, "template.params.tags[1]"),
        (PATTERN, TEMPLATE, 0, "dedup_seconds"),
    ],
)
def test_a_bad_rule_names_its_field(pattern, template, dedup, field):
    with pytest.raises(InvalidInput) as error:
        Rule.parse("r", "*.log", pattern, template, dedup)
    assert error.value.field == field
