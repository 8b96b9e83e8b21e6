"""``@task``: a plain function becomes a plugin, for teams coming from Celery.

The function's parameters are the task's params, passed as keyword arguments; a first
parameter named ``ctx`` (or annotated ``TaskContext``) receives the context instead. Without
an explicit ``params_schema`` one is derived from the signature, so a Celery task
``def resize(path: str, width: int = 100)`` keeps its call shape and gains validation.
The decorated name stays an ordinary callable, as Celery's task objects do.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, get_type_hints, overload

from taskworker.context import TaskContext
from taskworker.task import Task

F = TypeVar("F", bound=Callable[..., Any])
_JSON_TYPES: dict[Any, str] = {
    int: "integer",
    float: "number",
    str: "string",
    bool: "boolean",
    list: "array",
    dict: "object",
}


def schema_from_signature(fn: Callable[..., Any]) -> dict[str, Any]:
    """A JSON schema for the keyword params of ``fn`` (context parameter excluded)."""
    hints = get_type_hints(fn)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, param in inspect.signature(fn).parameters.items():
        if _is_context(name, hints.get(name)):
            continue
        kind = _JSON_TYPES.get(hints.get(name))
        properties[name] = {"type": kind} if kind else {}
        if param.default is inspect.Parameter.empty:
            required.append(name)
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _is_context(name: str, hint: Any) -> bool:
    return name == "ctx" or hint is TaskContext


def _takes_context(fn: Callable[..., Any]) -> bool:
    hints = get_type_hints(fn)
    first = next(iter(inspect.signature(fn).parameters), None)
    return first is not None and _is_context(first, hints.get(first))


@overload
def task(fn: F, /) -> F: ...
@overload
def task(
    *,
    task_type: str | None = None,
    blocking: bool = True,
    params_schema: dict[str, Any] | None = None,
    resources: Callable[[dict[str, Any]], list[str]] | None = None,
) -> Callable[[F], F]: ...


def task(
    fn: F | None = None,
    /,
    *,
    task_type: str | None = None,
    blocking: bool = True,
    params_schema: dict[str, Any] | None = None,
    resources: Callable[[dict[str, Any]], list[str]] | None = None,
) -> F | Callable[[F], F]:
    """Make ``fn`` a plugin; its ``Task`` subclass is ``fn.task_class``."""

    def wrap(func: F) -> F:
        with_ctx = _takes_context(func)

        def run(self: Task, ctx: TaskContext) -> Any:
            return func(ctx, **ctx.params) if with_ctx else func(**ctx.params)

        body: dict[str, Any] = {
            "task_type": task_type or func.__name__,
            "blocking": blocking,
            "params_schema": params_schema or schema_from_signature(func),
            "description": (func.__doc__ or "").strip().split("\n")[0],
            "run": run,
            "__module__": func.__module__,
        }
        if resources is not None:
            body["resources"] = lambda self, params: resources(params)
        cls = type(f"{func.__name__}_task", (Task,), body)

        @functools.wraps(func)
        def plain(*args: Any, **kwargs: Any) -> Any:
            return func(*args, **kwargs)

        plain.task_class = cls  # type: ignore[attr-defined]
        return plain  # type: ignore[return-value]

    return wrap(fn) if fn is not None else wrap
