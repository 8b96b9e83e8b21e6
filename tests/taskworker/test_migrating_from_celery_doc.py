"""docs/migrating-from-celery.md is executed: its TaskScheduler examples work as printed.

Celery snippets are fenced ``py`` (shown, not run); TaskScheduler ones ``python`` (run).
"""

from __future__ import annotations

import re
from pathlib import Path

from taskworker.testing import TaskEnvironment

DOC = Path(__file__).resolve().parents[2] / "docs" / "migrating-from-celery.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_the_celery_task_translated_by_swapping_the_decorator_keeps_its_call_shape():
    # Given the guide's TaskScheduler python blocks, run as a reader would paste them
    namespace: dict[str, object] = {"__name__": "migration_example"}
    for block in blocks("python"):
        exec(compile(block, str(DOC), "exec"), namespace)
    resize = namespace["resize"]
    # Then the function is still callable as before, and is a plugin with a derived schema
    assert resize("/data/a.png", width=640) == {"path": "/data/a.png", "width": 640}
    plugin = resize.task_class
    assert plugin.task_type == "resize"
    assert plugin.params_schema["required"] == ["path"]
    # And run as a task, its params come from the submitted params
    env = TaskEnvironment(plugin, {"path": "/data/a.png"})
    assert env.run_step() == {"path": "/data/a.png", "width": 100}


def test_the_context_taking_example_logs_reports_progress_and_locks_its_file():
    namespace: dict[str, object] = {"__name__": "migration_example"}
    for block in blocks("python"):
        exec(compile(block, str(DOC), "exec"), namespace)
    plugin = namespace["compress"].task_class
    env = TaskEnvironment(plugin, {"path": "/data/a.log"})
    assert env.run_step() == {"path": "/data/a.log.gz"}
    assert plugin().resources({"path": "/data/a.log"}) == ["file:/data/a.log"]
    assert ("info", "compressing /data/a.log") in env.recorded.logs
    assert env.recorded.progress[-1][0] == 50
