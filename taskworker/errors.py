"""Errors shared by the worker, the scheduler and plugins.

Every error is built from its data, so callers never parse messages, and each class carries
the HTTP status the one error table of either server maps it to::

    TaskError                               root of everything raised on purpose
     ├── InvalidInput(field, message)       400  bad input; ``field`` is a JSON path
     │    └── ParamsInvalid(field, message) 400  params fail the plugin's schema
     ├── Unauthorized(message)              401  missing or bad credentials / signature
     ├── Forbidden(message)                 403  authenticated, but the role may not
     ├── NotFound(kind, key)                404  unknown task, type, trigger, worker
     ├── Conflict(message)                  409  the request clashes with the current state
     │    ├── TransitionRefused(...)        409  the state table forbids the move
     │    ├── ConcurrentUpdate(task_id)     409  another writer moved the task first
     │    └── StaleAttempt(...)             409  a call for an attempt that is not current
     ├── PayloadTooLarge(limit)             413
     ├── Unavailable(message, retry_after)  503  come back later (a service is down)
     │    └── PoolFull(capacity)            503  the worker runs all it can
     └── PluginError                             a plugin is badly defined or will not load
          ├── PluginDefinitionError(cls, message)
          └── PluginLoadError(name, error)

Raised by plugin code to steer its own task (not failures of ours)::

    TaskFailed(message, retryable=True)     the step failed; retry only if ``retryable``
    Retry(after=seconds, message)           fail this attempt and retry after a delay
    Cancelled                               raised by ``checkpoint()`` once cancel arrives
"""

from __future__ import annotations

from typing import Any


class TaskError(Exception):
    """Root of every error raised on purpose; ``http_status`` drives the error tables."""

    http_status = 500
    title = "Internal error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_body(self) -> dict[str, Any]:
        return {"title": self.title, "description": self.message}


class InvalidInput(TaskError):
    http_status = 400
    title = "Invalid input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.detail = message

    def within(self, prefix: str) -> InvalidInput:
        """The same error about an item of a list (``tasks[3]`` + ``params.x``)."""
        return type(self)(f"{prefix}.{self.field}", self.detail)

    def to_body(self) -> dict[str, Any]:
        return {**super().to_body(), "field": self.field}


class ParamsInvalid(InvalidInput):
    title = "Invalid params"


class Unauthorized(TaskError):
    http_status = 401
    title = "Unauthorized"


class Forbidden(TaskError):
    http_status = 403
    title = "Forbidden"


class NotFound(TaskError):
    http_status = 404
    title = "Not found"

    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"no {kind} {key!r}")
        self.kind = kind
        self.key = key


class Conflict(TaskError):
    http_status = 409
    title = "Conflict"


class TransitionRefused(Conflict):
    title = "Transition not allowed"

    def __init__(self, task_id: int | None, state: str, trigger: str, why: str = "") -> None:
        subject = f"task {task_id}" if task_id is not None else "the task"
        text = f"{subject} is in state {state!s}; {trigger!s} is not allowed"
        super().__init__(f"{text}: {why}" if why else text)
        self.task_id = task_id
        self.state = str(state)
        self.trigger = str(trigger)


class ConcurrentUpdate(Conflict):
    title = "Concurrent update"

    def __init__(self, task_id: int) -> None:
        super().__init__(f"task {task_id} was changed by another writer; read it again")
        self.task_id = task_id


class StaleAttempt(Conflict):
    title = "Stale attempt"

    def __init__(self, task_id: int, attempt: int, current: int) -> None:
        super().__init__(
            f"task {task_id}: attempt {attempt} is stale, the current one is {current}"
        )
        self.task_id = task_id
        self.attempt = attempt
        self.current = current


class PayloadTooLarge(TaskError):
    http_status = 413
    title = "Payload too large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"the body exceeds {limit} bytes")
        self.limit = limit


class Unavailable(TaskError):
    http_status = 503
    title = "Service unavailable"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PoolFull(Unavailable):
    def __init__(self, capacity: int, retry_after: int = 1) -> None:
        super().__init__(f"the worker runs {capacity} steps already", retry_after)
        self.capacity = capacity


class PluginError(TaskError):
    title = "Plugin error"


class PluginDefinitionError(PluginError):
    def __init__(self, cls: str, message: str) -> None:
        super().__init__(f"plugin {cls}: {message}")
        self.cls = cls


class PluginLoadError(PluginError):
    def __init__(self, name: str, error: BaseException | str) -> None:
        detail = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        super().__init__(f"plugin {name} failed to load: {detail}")
        self.name = name
        self.error = error


class TaskFailed(Exception):
    """Raised by a plugin step: the step failed. ``retryable=False`` skips the retries."""

    def __init__(self, message: str, *, retryable: bool = True, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.details = details


class Retry(Exception):
    """Raised by a plugin step: fail this attempt and try again after ``after`` seconds."""

    def __init__(self, after: float = 0.0, message: str = "retry requested") -> None:
        super().__init__(message)
        self.after = after
        self.message = message


class Cancelled(Exception):
    """Raised by ``TaskContext.checkpoint()`` once the task was cancelled; let it propagate."""
