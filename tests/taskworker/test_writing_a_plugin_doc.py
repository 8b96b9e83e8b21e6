"""docs/writing-a-plugin.md is executed: its examples must work exactly as printed."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "writing-a-plugin.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_the_plugin_guide_examples_run_as_written():
    # Given the guide's python blocks, in order, in one namespace (as a reader would paste them)
    blocks = python_blocks()
    assert len(blocks) == 3, "the guide shows a class, a decorated function and a test"
    namespace: dict[str, object] = {"__name__": "guide_example"}
    # When they are executed (the last block asserts the plugin's behaviour itself)
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)
    # Then the example plugins exist as the guide describes them
    archive = namespace["ArchiveDirectory"]
    assert archive.task_type == "archive_directory"
    assert archive.steps() == {"prepare", "run", "rollback"}
    assert namespace["count_lines"].task_class.task_type == "count_lines"
