"""Running one plugin step and turning however it ended into a :class:`Completion`.

A plugin steers its outcome by raising (``TaskFailed``, ``Retry``, ``Cancelled``); anything
else it raises is a bug of the plugin, reported with its type and message (the traceback
goes to the worker's log, not to the scheduler). A result that JSON cannot carry fails the
step here, where the plugin is named, rather than later in the reporter's thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import msgspec

from taskworker.errors import Cancelled, Retry, TaskFailed
from taskworker.records import Completion

log = logging.getLogger(__name__)


def run_step(step: Callable[[], Any], what: str) -> Completion:
    """Call ``step`` and classify its end; never raises."""
    try:
        result = step()
    except Cancelled:
        return Completion(False, error={"message": "cancelled"}, cancelled=True)
    except TaskFailed as exc:
        error = {"message": exc.message, "retryable": exc.retryable, "details": exc.details}
        return Completion(False, error=_jsonable(error, what))
    except Retry as exc:
        return Completion(False, error={"message": exc.message, "retry_after": exc.after})
    except Exception as exc:
        log.exception("%s raised", what)
        return Completion(False, error={"message": f"{type(exc).__name__}: {exc}"})
    try:
        msgspec.json.encode(result)
    except (TypeError, msgspec.EncodeError) as exc:
        return Completion(False, error={"message": f"{what} returned a non-JSON result: {exc}"})
    return Completion(True, result=result)


def _jsonable(error: dict[str, Any], what: str) -> dict[str, Any]:
    try:
        msgspec.json.encode(error)
    except (TypeError, msgspec.EncodeError):
        return {**error, "details": repr(error["details"])}
    return error


def start_step(
    name: str, step: Callable[[], Any], on_done: Callable[[Completion], None]
) -> threading.Thread:
    """Run ``step`` in a thread of its own and hand its completion to ``on_done``.

    A thread per step rather than a fixed pool: a step that ignores cancel cannot be killed
    in Python, and a fixed pool would lose that thread for good; here it is abandoned after
    the grace period and no longer counts against the worker's capacity.
    """

    def target() -> None:
        on_done(run_step(step, name))

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread
