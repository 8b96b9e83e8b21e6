"""What a plugin step receives: its params, its identity, and the ways to speak and listen.

Speaking (``log``, ``progress``, ``heartbeat``) goes to a :class:`ReportSink`: the worker's
reporter batches it to the scheduler, the test environment records it. Listening goes through
:class:`Control`, flipped by the worker's HTTP threads: ``checkpoint()`` blocks while the task
is paused and raises :class:`Cancelled` once it is cancelled. Python cannot stop a thread from
outside, so cooperation at checkpoints is how pause and cancel reach plugin code; a plugin that
never checks is abandoned after the worker's grace period.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from taskworker.errors import Cancelled


class ReportSink(Protocol):
    """Where a running step's reports go. Implementations must be thread-safe."""

    def log(self, task_id: int, attempt: int, level: str, message: str) -> None: ...

    def progress(self, task_id: int, attempt: int, percent: float, message: str) -> None: ...

    def heartbeat(self, task_id: int, attempt: int) -> None: ...


class Control:
    """Pause and cancel requests for one task attempt, safe to flip from any thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._paused = False
        self._cancelled = False

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def request_pause(self) -> None:
        with self._cond:
            self._paused = True
            self._cond.notify_all()

    def request_continue(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def request_cancel(self) -> None:
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``; return early when a pause or cancel request arrives."""
        with self._cond:
            self._cond.wait_for(lambda: self._paused or self._cancelled, timeout=seconds)

    def hold_while_paused(
        self, on_pause: Callable[[], None], on_resume: Callable[[], None]
    ) -> None:
        """Block while paused (calling the plugin's hooks around it); raise once cancelled."""
        if self._cancelled:
            raise Cancelled()
        if not self._paused:
            return
        on_pause()
        with self._cond:
            self._cond.wait_for(lambda: not self._paused or self._cancelled)
        if self._cancelled:
            raise Cancelled()
        on_resume()


class TaskContext:
    """The context one step of one task attempt runs with."""

    __slots__ = (
        "_control",
        "_on_pause",
        "_on_resume",
        "_sink",
        "attempt",
        "notify_token",
        "notify_url",
        "params",
        "result",
        "reverted_task_id",
        "target",
        "task_id",
        "task_type",
    )

    def __init__(
        self,
        *,
        task_id: int,
        task_type: str,
        attempt: int,
        params: dict[str, Any],
        sink: ReportSink,
        control: Control | None = None,
        on_pause: Callable[[], None] | None = None,
        on_resume: Callable[[], None] | None = None,
        notify_url: str | None = None,
        notify_token: str | None = None,
        target: Any = None,
        result: Any = None,
        reverted_task_id: int | None = None,
    ) -> None:
        self.task_id = task_id
        #: In ``rollback``: the result of the run being undone (this task's, or in a revert
        #: the reverted task's); None when that run returned nothing or never ended.
        self.result = result
        #: In a revert: the finished task whose run is undone. Plugins that mark what they
        #: made with their task's id look for :attr:`owner_task_id`'s marks.
        self.reverted_task_id = reverted_task_id
        #: The one target this task runs on when it is a fan-out's child, else None.
        self.target = target
        #: Where outside work reports this task's completion (``PUT ...&action=notify``), and
        #: the per-task token that authorises it; set when the scheduler dispatched the task.
        self.notify_url = notify_url
        self.notify_token = notify_token
        self.task_type = task_type
        self.attempt = attempt
        self.params = params
        self._sink = sink
        self._control = control or Control()
        self._on_pause = on_pause or _nothing
        self._on_resume = on_resume or _nothing

    @property
    def owner_task_id(self) -> int:
        """The task whose run made what this step works on: this one, or the one reverted."""
        return self.task_id if self.reverted_task_id is None else self.reverted_task_id

    @property
    def cancelled(self) -> bool:
        return self._control.cancelled

    @property
    def paused(self) -> bool:
        return self._control.paused

    def log(self, message: str, level: str = "info") -> None:
        self._sink.log(self.task_id, self.attempt, level, message)

    def progress(self, percent: float, message: str = "") -> None:
        self._sink.progress(self.task_id, self.attempt, max(0.0, min(100.0, percent)), message)

    def heartbeat(self) -> None:
        self._sink.heartbeat(self.task_id, self.attempt)

    def checkpoint(self) -> None:
        """A safe point: wait here while paused; raise :class:`Cancelled` once cancelled."""
        self._control.hold_while_paused(self._on_pause, self._on_resume)

    def wait(self, seconds: float) -> None:
        """Sleep cooperatively: wakes at once on pause or cancel (then call ``checkpoint``)."""
        self._control.wait(seconds)


def _nothing() -> None:
    return None
