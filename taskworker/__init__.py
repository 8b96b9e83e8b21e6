"""The plugin author's whole API: subclass :class:`Task` (or decorate a function with
:func:`task`), use the :class:`TaskContext` a step receives, and raise :class:`TaskFailed`
or :class:`Retry` to steer the outcome."""

from taskworker.context import TaskContext
from taskworker.decorator import task
from taskworker.errors import Cancelled, Retry, TaskFailed
from taskworker.task import Task

__all__ = ["Cancelled", "Retry", "Task", "TaskContext", "TaskFailed", "task"]
