"""The LogDumper loop on a real database and real files: each matching line one task,
across rotation, truncation and restarts; dedup windows; refused rules and lines."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from taskscheduler.db.tables import TASKS
from taskscheduler.locks import LocalLocks
from taskscheduler.logdumper.config import load_rules
from taskscheduler.logdumper.rules import Rule
from taskscheduler.loops.logdumper import LogDumperLoop
from taskworker.config import SettingsError
from tests.taskscheduler.api.harness import Api, build_api

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def api(db_url: str, engine: Engine) -> Api:
    return build_api(db_url, engine)


def rule(folder: Path, **more: object) -> Rule:
    return Rule.parse(
        str(more.pop("name", "down")),
        str(folder / "*.log"),
        r"host (?P<host>\S+) is down",
        {"create_info": {"task_type": "external", "task_name": "recover {host}"}, "params": {}},
        **more,  # type: ignore[arg-type]
    )


def dumper(api: Api, *rules: Rule) -> LogDumperLoop:
    """A LogDumper as a freshly started node has it: nothing in memory."""
    return LogDumperLoop(api.engine, list(rules), LocalLocks(), node="n1", lease_seconds=10)


def tasks(api: Api) -> list[str]:
    with api.engine.connect() as conn:
        names = conn.execute(select(TASKS.c.task_name).order_by(TASKS.c.id)).scalars()
        return list(names)


def append(path: Path, *lines: str) -> None:
    with path.open("a") as handle:
        handle.writelines(f"{line}\n" for line in lines)


def test_each_matching_line_makes_one_task_across_passes_rotation_and_restarts(api, tmp_path):
    log = tmp_path / "app.log"
    append(log, "host db-1 is down", "all good", "host db-2 is down")
    dumper(api, rule(tmp_path)).tick(NOW)
    assert tasks(api) == ["recover db-1", "recover db-2"]
    # a half-written line waits for its newline
    with log.open("a") as handle:
        handle.write("host db-3 is do")
    dumper(api, rule(tmp_path)).tick(NOW)
    assert len(tasks(api)) == 2
    append(log, "wn")
    # rotated: the rest of the old file, then the new one, by a restarted node
    append(log, "host db-4 is down")
    os.rename(log, tmp_path / "app.log.1")
    append(log, "host db-5 is down")
    restarted = dumper(api, rule(tmp_path))
    restarted.tick(NOW)
    restarted.tick(NOW)
    assert tasks(api)[2:] == ["recover db-3", "recover db-4", "recover db-5"]
    # truncated in place (copytruncate): read again from the start
    log.write_text("")
    append(log, "host db-6 is down")
    dumper(api, rule(tmp_path)).tick(NOW)
    assert tasks(api)[5:] == ["recover db-6"]


def test_a_dedup_window_makes_one_task_of_repeats_within_it(api, tmp_path):
    log = tmp_path / "app.log"
    append(log, "host db-1 is down", "host db-1 is down", "host db-2 is down")
    loop = dumper(api, rule(tmp_path, dedup_seconds=300))
    loop.tick(NOW)
    append(log, "host db-1 is down")
    loop.tick(NOW.replace(minute=4))
    assert tasks(api) == ["recover db-1", "recover db-2"]
    append(log, "host db-1 is down")
    loop.tick(NOW.replace(minute=6))  # the next window
    assert tasks(api) == ["recover db-1", "recover db-2", "recover db-1"]


def test_a_line_whose_task_is_refused_is_skipped_and_the_file_goes_on(api, tmp_path):
    bad = Rule.parse(
        "sleepy",
        str(tmp_path / "*.log"),
        r"nap (?P<seconds>\S+)",
        {
            "create_info": {"task_type": "sleep", "task_name": "nap"},
            "params": {"seconds": "{seconds}"},
        },
    )
    append(tmp_path / "app.log", "nap soon", "nap later")
    loop = dumper(api, bad)
    assert loop.tick(NOW) == 2
    assert tasks(api) == []
    assert loop.tick(NOW) == 0  # read once, not again


def test_a_bad_rules_file_is_refused_naming_the_rule_and_field(tmp_path):
    path = tmp_path / "rules.json"
    good = {
        "name": "a",
        "source": "/var/log/*.log",
        "pattern": "x",
        "template": {"create_info": {"task_type": "noop"}},
    }
    cases = {
        "rules[1].pattern": [good, {**good, "name": "b", "pattern": "("}],
        "rules[0].template.params.x": [
            {**good, "template": {"create_info": {"task_type": "noop"}, "params": {"x": "{nope}"}}}
        ],
        "rules[0].template.create_info.task_type": [{**good, "template": {"params": {}}}],
        "rules[1].name": [good, good],
        "rules[0]": [{**good, "extra": 1}],
    }
    for field, rules in cases.items():
        path.write_text(json.dumps(rules))
        with pytest.raises(SettingsError, match=field.replace("[", r"\[").replace("]", r"\]")):
            load_rules(str(path))
    path.write_text(json.dumps([good]))
    assert [r.name for r in load_rules(str(path))] == ["a"]
