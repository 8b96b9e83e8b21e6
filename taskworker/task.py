"""The ``Task`` base class every plugin subclasses (DESIGN §7).

A plugin declares what it is (``task_type``, ``blocking``, ``params_schema``, the resources
it locks) and overrides the steps it supports. The optional steps are no-op hooks here, and
what a plugin supports is derived from what it overrides, so the worker can refuse a
``rollback`` of a plugin that cannot roll back instead of pretending it did.

What undoing a task of the type means is ``undo``: declared, or derived from the steps
(``rollback`` when the plugin implements it, else ``impossible``); a plugin whose ``run``
changes nothing declares ``nothing``, so a saga counts it undone without asking its worker.

A plugin is checked when its class is defined (``__init_subclass__``): a bad type name or an
invalid JSON schema fails at import, where discovery reports it with the plugin's name,
rather than at the first request.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

from taskworker.context import TaskContext
from taskworker.contract.fields import TASK_TYPE_PATTERN
from taskworker.contract.worker import Undo, derived_undo
from taskworker.errors import ParamsInvalid, PluginDefinitionError

#: The optional steps, in the order a task meets them.
STEPS = ("prepare", "run", "rollback", "pause", "resume", "change", "clean", "summary")
_TYPE_NAME = re.compile(TASK_TYPE_PATTERN)


class Task:
    """Base of every plugin. A subclass without ``task_type`` is an abstract base of others."""

    #: The name in ``/v1/task/{task_type}``; lowercase letters, digits and underscores.
    task_type: ClassVar[str | None] = None
    #: True: the task succeeds or fails when ``run`` returns. False: ``run`` starts external
    #: work and the task stays ``running`` until someone calls ``notify``.
    blocking: ClassVar[bool] = True
    #: JSON Schema (draft 2020-12) of the params; checked before anything is stored.
    params_schema: ClassVar[dict[str, Any]] = {"type": "object"}
    description: ClassVar[str] = ""
    #: True when a task of this type can do anything the worker's user can (run commands,
    #: scripts): only the admin role may submit one, directly, in a batch, in a topology or
    #: fan-out, or as a trigger's template, and only an admin may change its params. The
    #: worker reports it at registration; the scheduler enforces it.
    privileged: ClassVar[bool] = False
    #: What undoing a finished run means: ``"rollback"`` (the ``rollback`` step undoes it),
    #: ``"nothing"`` (``run`` changes nothing) or ``"impossible"``. Unset, it is derived
    #: from the steps (:meth:`undo_kind`).
    undo: ClassVar[str | None] = None
    _validator: ClassVar[Draft202012Validator]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "task_type" not in cls.__dict__ or cls.task_type is None:
            return
        name = cls.__qualname__
        if not isinstance(cls.task_type, str) or not _TYPE_NAME.match(cls.task_type):
            raise PluginDefinitionError(name, f"task_type must match {TASK_TYPE_PATTERN}")
        if not isinstance(cls.blocking, bool):
            raise PluginDefinitionError(name, "blocking must be True or False")
        if not isinstance(cls.privileged, bool):
            raise PluginDefinitionError(name, "privileged must be True or False")
        try:
            Draft202012Validator.check_schema(cls.params_schema)
        except SchemaError as exc:
            raise PluginDefinitionError(name, f"params_schema is invalid: {exc.message}") from None
        if "run" not in cls.steps():
            raise PluginDefinitionError(name, "a plugin must implement run(ctx)")
        cls._check_undo(name)
        cls._validator = Draft202012Validator(cls.params_schema)
        if not cls.description:
            cls.description = (cls.__doc__ or "").strip().split("\n")[0]

    @classmethod
    def steps(cls) -> frozenset[str]:
        """The optional steps this plugin overrides, i.e. supports."""
        return frozenset(s for s in STEPS if getattr(cls, s) is not getattr(Task, s))

    @classmethod
    def undo_kind(cls) -> Undo:
        """What undoing a task of this type means: ``undo`` as declared, else derived."""
        return derived_undo(cls.steps()) if cls.undo is None else Undo(cls.undo)

    @classmethod
    def _check_undo(cls, name: str) -> None:
        """A declared ``undo`` must be one of :class:`Undo` and agree with the steps: only
        a plugin with ``rollback`` undoes by it, and one with ``rollback`` undoes by it."""
        if cls.undo is None:
            return
        allowed = ", ".join(repr(u.value) for u in Undo)
        if cls.undo not in set(Undo):
            raise PluginDefinitionError(name, f"undo must be one of {allowed}")
        implements = "rollback" in cls.steps()
        if (cls.undo == Undo.ROLLBACK) != implements:
            why = "implements rollback(ctx)" if implements else "does not implement rollback(ctx)"
            raise PluginDefinitionError(name, f"undo is {cls.undo!r} but the plugin {why}")

    @classmethod
    def declares_resources(cls) -> bool:
        """Whether :meth:`resources` is overridden, i.e. tasks of the type may lock names."""
        return cls.resources is not Task.resources

    @classmethod
    def validate_params(cls, params: Any) -> dict[str, Any]:
        """Return ``params`` if they fit the schema; else ``ParamsInvalid`` naming the field."""
        error = best_match(cls._validator.iter_errors(params))
        if error is None:
            return params  # type: ignore[no-any-return]
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else ""
            path = f"{path}.{missing}" if missing else path
        raise ParamsInvalid(f"params{path}", error.message)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """What a worker registers for this type with the scheduler."""
        return {
            "params_schema": cls.params_schema,
            "blocking": cls.blocking,
            "privileged": cls.privileged,
            "description": cls.description,
            "steps": sorted(cls.steps()),
            "declares_resources": cls.declares_resources(),
            "undo": cls.undo_kind().value,
        }

    def resources(self, params: dict[str, Any]) -> list[str]:
        """Names locked while the task runs (e.g. ``mysql:db-42``); none by default."""
        return []

    # The optional steps: no-ops unless overridden. ``run`` is required of a concrete plugin.

    def prepare(self, ctx: TaskContext) -> None:
        """Check preconditions once the locks are held; raise to fail the task early."""

    def run(self, ctx: TaskContext) -> Any:
        """Do the work; the return value is the task's result (JSON-serialisable)."""

    def rollback(self, ctx: TaskContext) -> None:
        """Undo what ``run`` did: in a saga, on an operator's ``rollback``, and as the work
        of a revert (then ``ctx.params`` are the reverted task's, ``ctx.result`` its result
        and ``ctx.reverted_task_id`` its id)."""

    def pause(self, ctx: TaskContext) -> None:
        """Called when the task pauses at a checkpoint (e.g. suspend an external job)."""

    def resume(self, ctx: TaskContext) -> None:
        """Called when a paused task continues."""

    def change(self, ctx: TaskContext, params: dict[str, Any]) -> None:
        """New params arrived while the task is not running; already validated."""

    def clean(self, ctx: TaskContext) -> None:
        """Remove temporary state once the task finished, whatever its outcome."""

    def summary(self, ctx: TaskContext) -> dict[str, Any]:
        """A short, plugin-specific account of the task for ``action=summary``."""
        return {}
