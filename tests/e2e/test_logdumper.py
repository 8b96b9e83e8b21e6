"""The LogDumper in a real ``taskscheduler standalone``: lines appended, the file rotated,
the node killed with SIGKILL and started again — each matching line makes one task."""

from __future__ import annotations

import json
import os
from pathlib import Path

from taskscheduler.db import migrate
from tests.processes import PYTHON, call, free_port, running, wait_until


def append(path: Path, *lines: str) -> None:
    with path.open("a") as handle:
        handle.writelines(f"{line}\n" for line in lines)


def test_each_matching_line_makes_one_task_across_rotation_and_a_kill_9(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps(
            [
                {
                    "name": "down",
                    "source": str(logs / "*.log"),
                    "pattern": r"host (?P<host>\S+) is down",
                    "template": {
                        "create_info": {"task_type": "noop", "task_name": "recover {host}"},
                        "params": {},
                    },
                }
            ]
        )
    )
    db_url = f"sqlite:///{tmp_path / 'tasks.db'}"
    migrate.upgrade(db_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [PYTHON, "-m", "taskscheduler", "standalone", "--bind", f"127.0.0.1:{port}"]
    env = {"TASK_DB_URL": db_url, "TASK_LOGDUMPER_RULES": str(rules)}

    def names() -> list[str]:
        page = call("GET", f"{base}/v1/tasks?type=noop&limit=500")
        return sorted(t["task_name"] for t in page["items"])

    log = logs / "app.log"
    expected: list[str] = []

    def hosts(*numbers: int) -> list[str]:
        found = [f"host db-{n} is down" for n in numbers]
        expected.extend(f"recover db-{n}" for n in numbers)
        return found

    with running(argv, url=base, log_path=tmp_path / "node1.log", cwd=tmp_path, env=env) as node:
        append(log, *hosts(1, 2), "nothing to see")
        wait_until(lambda: names() == sorted(expected), 30, what="the first lines' tasks")
        append(log, *hosts(3))
        os.rename(log, logs / "app.log.1")
        append(log, *hosts(4))
        wait_until(lambda: names() == sorted(expected), 30, what="the rotated lines' tasks")
        append(log, *hosts(5, 6))
        node.kill()  # whatever it had read or not, uncommitted
    append(log, *hosts(7))
    with running(argv, url=base, log_path=tmp_path / "node2.log", cwd=tmp_path, env=env):
        wait_until(lambda: len(names()) >= len(expected), 30, what="the lines since the kill")
        append(log, *hosts(8))
        wait_until(lambda: len(names()) >= len(expected), 30, what="new lines after restart")
        assert names() == sorted(expected)
