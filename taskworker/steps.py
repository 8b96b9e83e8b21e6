"""Running one plugin step and turning however it ended into a :class:`Completion`.

A plugin steers its outcome by raising (``TaskFailed``, ``Retry``, ``Cancelled``); anything
else it raises is a bug of the plugin, reported with its type and message (the traceback
goes to the worker's log, not to the scheduler). A result that JSON cannot carry fails the
step here, where the plugin is named, rather than later in the reporter's thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from taskworker.errors import Cancelled, Retry, TaskFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Completion:
    """How a step ended; ``cancelled``: it stopped at a checkpoint because it was told to."""

    success: bool
    result: Any = None
    error: Any = None
    cancelled: bool = False


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


class Step:
    """A step started by :func:`start_step`: joined and asked whether it runs, as a thread."""

    __slots__ = ("_done",)

    def __init__(self) -> None:
        self._done = threading.Event()

    def is_alive(self) -> bool:
        return not self._done.is_set()

    def join(self, timeout: float | None = None) -> None:
        self._done.wait(timeout)


class _StepThreads:
    """Daemon threads that run steps one after another, started only when none is idle.

    Not a fixed pool: a step that ignores cancel cannot be killed in Python, and a fixed
    pool would lose that thread for good; here it is abandoned after the grace period and
    another thread takes its place. Not a thread per step either: starting one costs more
    than a no-op task's whole share of the worker (docs/performance.md). A thread idle for
    :data:`IDLE_SECONDS` ends; daemon threads, so an abandoned step never holds up exit.
    """

    IDLE_SECONDS = 60.0

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1  # that thread takes the job
                self._jobs.put(job)
                return
        threading.Thread(target=self._serve, args=(job,), name="step", daemon=True).start()

    def _serve(self, job: Callable[[], None]) -> None:
        while True:
            job()
            with self._lock:
                self._idle += 1
            try:
                job = self._jobs.get(timeout=self.IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    try:  # a job handed over just as the wait ended is still ours
                        job = self._jobs.get_nowait()
                    except queue.Empty:
                        self._idle -= 1
                        return


_THREADS = _StepThreads()


def start_step(name: str, step: Callable[[], Any], on_done: Callable[[Completion], None]) -> Step:
    """Run ``step`` on a step thread and hand its completion to ``on_done``; the returned
    handle is joined once ``on_done`` has returned."""
    handle = Step()

    def job() -> None:
        try:
            on_done(run_step(step, name))
        finally:
            handle._done.set()

    _THREADS.submit(job)
    return handle
