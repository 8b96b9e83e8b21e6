"""Finding plugins: the shipped ``plugins`` package, extra directories, and entry points.

One broken plugin must not take the others down: each module is imported on its own, and
whatever goes wrong (a syntax error, an import error, a bad definition, a task type claimed
twice) becomes a :class:`PluginLoadError` that names the plugin, is logged, and is kept in
:attr:`PluginSet.errors` for the worker to report.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import pkgutil
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from taskworker.errors import PluginLoadError
from taskworker.task import Task

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "taskworker.plugins"
#: Modules loaded from plugin directories live under this name, away from real packages.
_DIR_NAMESPACE = "taskworker_plugins"


@dataclass
class PluginSet:
    """task_type → plugin class, and what failed to load."""

    types: dict[str, type[Task]] = field(default_factory=dict)
    errors: list[PluginLoadError] = field(default_factory=list)

    def add(self, origin: str, cls: type[Task]) -> None:
        task_type = str(cls.task_type)
        known = self.types.get(task_type)
        if known is cls:
            return
        if known is not None:
            self.fail(origin, f"task_type {task_type!r} is already defined by {known.__module__}")
            return
        self.types[task_type] = cls

    def fail(self, origin: str, error: BaseException | str) -> None:
        problem = PluginLoadError(origin, error)
        log.error("%s", problem)
        self.errors.append(problem)


def plugins_in(module: ModuleType) -> Iterator[type[Task]]:
    """Concrete plugins defined in ``module`` (not the ones it merely imports)."""
    for value in vars(module).values():
        cls: Any = getattr(value, "task_class", value)
        if (
            isinstance(cls, type)
            and issubclass(cls, Task)
            and cls.task_type
            and cls.__module__ == module.__name__
        ):
            yield cls


def _load(found: PluginSet, origin: str, importer: Any) -> None:
    try:
        module = importer()
    except Exception as exc:
        found.fail(origin, exc)
        return
    for cls in plugins_in(module):
        found.add(origin, cls)


def _shipped(found: PluginSet) -> None:
    import plugins

    for info in pkgutil.walk_packages(plugins.__path__, prefix="plugins."):
        _load(found, info.name, lambda name=info.name: importlib.import_module(name))


def _from_dir(found: PluginSet, directory: Path) -> None:
    if not directory.is_dir():
        found.fail(str(directory), "not a directory")
        return
    for path in sorted(directory.iterdir()):
        if path.name.startswith(("_", ".")):
            continue
        if path.suffix == ".py":
            _load(found, str(path), lambda p=path: _import_path(p.stem, p))
        elif (path / "__init__.py").is_file():
            _load(found, str(path), lambda p=path: _import_path(p.name, p / "__init__.py"))


def _import_path(name: str, path: Path) -> ModuleType:
    module_name = f"{_DIR_NAMESPACE}.{name}"
    spec = importlib.util.spec_from_file_location(
        module_name,
        path,
        submodule_search_locations=[str(path.parent)] if path.stem == "__init__" else None,
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _entry_points(found: PluginSet) -> None:
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        origin = f"{entry.name} ({entry.value})"
        try:
            target = entry.load()
        except Exception as exc:
            found.fail(origin, exc)
            continue
        cls = getattr(target, "task_class", target)
        if isinstance(target, ModuleType):
            for plugin in plugins_in(target):
                found.add(origin, plugin)
        elif isinstance(cls, type) and issubclass(cls, Task) and cls.task_type:
            found.add(origin, cls)
        else:
            found.fail(origin, "the entry point is neither a module nor a Task subclass")


def discover(
    dirs: Iterable[str | Path] = (), *, entry_points: bool = True, include_shipped: bool = True
) -> PluginSet:
    found = PluginSet()
    if include_shipped:
        _shipped(found)
    for directory in dirs:
        _from_dir(found, Path(directory))
    if entry_points:
        _entry_points(found)
    return found
