"""Plugin discovery: shipped, from directories, from entry points; broken ones reported."""

from __future__ import annotations

import sys
import textwrap

from taskworker.discovery import discover

GOOD = """
from taskworker import Task

class Hello(Task):
    task_type = "hello"
    def run(self, ctx):
        return {"hello": "world"}
"""


def test_the_shipped_plugins_load_without_errors():
    found = discover(entry_points=False)
    assert {"noop", "sleep", "shell", "fail", "external"} <= set(found.types)
    assert found.errors == []


def test_a_broken_plugin_is_reported_by_name_and_the_others_still_load(tmp_path):
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "syntax.py").write_text("def broken(:\n")
    (tmp_path / "importer.py").write_text("import no_such_module_anywhere\n")
    found = discover([tmp_path], entry_points=False, include_shipped=False)
    assert set(found.types) == {"hello"}
    failed = {e.name.rsplit("/", 1)[-1]: str(e) for e in found.errors}
    assert set(failed) == {"syntax.py", "importer.py"}
    assert "SyntaxError" in failed["syntax.py"]
    assert "no_such_module_anywhere" in failed["importer.py"]


def test_a_task_type_claimed_twice_is_an_error_and_the_first_wins(tmp_path):
    (tmp_path / "a.py").write_text(GOOD)
    (tmp_path / "b.py").write_text(GOOD)
    found = discover([tmp_path], entry_points=False, include_shipped=False)
    assert list(found.types) == ["hello"]
    assert len(found.errors) == 1
    assert "already defined" in str(found.errors[0])


def test_decorated_functions_in_a_directory_are_plugins(tmp_path):
    (tmp_path / "celery_style.py").write_text(
        textwrap.dedent("""
        from taskworker import task

        @task
        def ping(host: str) -> dict:
            return {"pong": host}
    """)
    )
    found = discover([tmp_path], entry_points=False, include_shipped=False)
    assert set(found.types) == {"ping"}


def test_plugins_of_installed_packages_load_from_the_entry_point_group(tmp_path, monkeypatch):
    # Given an installed distribution that declares a plugin in taskworker.plugins
    (tmp_path / "acme_plugins.py").write_text(GOOD.replace("hello", "acme_hello"))
    dist = tmp_path / "acme_plugins-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-plugins\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[taskworker.plugins]\nacme = acme_plugins:Hello\nbroken = acme_missing:Thing\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    # When plugins are discovered
    found = discover(include_shipped=False)
    # Then the plugin is there and the broken entry point is reported by name
    assert "acme_hello" in found.types
    assert any(e.name.startswith("broken") for e in found.errors)
    sys.modules.pop("acme_plugins", None)
