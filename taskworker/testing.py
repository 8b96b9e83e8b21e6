"""A test harness for plugin authors: run a plugin's steps under a real context.

``TaskEnvironment`` is what the worker gives a step, minus HTTP: a real :class:`TaskContext`
whose reports are recorded instead of sent, and a real :class:`Control` the test flips to
pause, continue or cancel a step running in a background thread::

    env = TaskEnvironment(SleepTask, {"seconds": 2})
    env.start("run")
    env.pause(); ...; env.resume()
    assert env.join(timeout=5) == {...}
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from taskworker.context import Control, TaskContext
from taskworker.task import Task


@dataclass
class Recorded:
    """Everything a step reported, in order."""

    logs: list[tuple[str, str]] = field(default_factory=list)
    progress: list[tuple[float, str]] = field(default_factory=list)
    heartbeats: int = 0


class _Sink:
    def __init__(self, recorded: Recorded) -> None:
        self._recorded = recorded
        self._lock = threading.Lock()

    def log(self, task_id: int, attempt: int, level: str, message: str) -> None:
        with self._lock:
            self._recorded.logs.append((level, message))

    def progress(self, task_id: int, attempt: int, percent: float, message: str) -> None:
        with self._lock:
            self._recorded.progress.append((percent, message))

    def heartbeat(self, task_id: int, attempt: int) -> None:
        with self._lock:
            self._recorded.heartbeats += 1


class TaskEnvironment:
    """Runs one plugin instance's steps with recorded reports and test-driven control."""

    def __init__(
        self,
        plugin: type[Task],
        params: dict[str, Any] | None = None,
        *,
        task_id: int = 1,
        attempt: int = 1,
        notify_url: str | None = None,
        notify_token: str | None = None,
        target: Any = None,
        result: Any = None,
        reverted_task_id: int | None = None,
    ) -> None:
        self.plugin = plugin()
        self.params = plugin.validate_params(params if params is not None else {})
        self.recorded = Recorded()
        self.control = Control()
        self.ctx = TaskContext(
            task_id=task_id,
            task_type=str(plugin.task_type),
            attempt=attempt,
            params=self.params,
            sink=_Sink(self.recorded),
            control=self.control,
            on_pause=lambda: self.plugin.pause(self.ctx),
            on_resume=lambda: self.plugin.resume(self.ctx),
            notify_url=notify_url,
            notify_token=notify_token,
            target=target,
            result=result,
            reverted_task_id=reverted_task_id,
        )
        self._thread: threading.Thread | None = None
        self._result: Any = None
        self._error: BaseException | None = None

    def run_step(self, step: str = "run") -> Any:
        """Run ``step`` in the calling thread and return what it returned."""
        return getattr(self.plugin, step)(self.ctx)

    def start(self, step: str = "run") -> None:
        """Run ``step`` in a background thread; collect it with :meth:`join`."""

        def target() -> None:
            try:
                self._result = self.run_step(step)
            except BaseException as exc:
                self._error = exc

        self._thread = threading.Thread(target=target, name=f"step-{step}", daemon=True)
        self._thread.start()

    def join(self, timeout: float = 30.0) -> Any:
        """Wait for the started step; return its result or raise what it raised."""
        assert self._thread is not None, "start() a step first"
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the step still runs after {timeout} s")
        if self._error is not None:
            raise self._error
        return self._result

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def pause(self) -> None:
        self.control.request_pause()

    def resume(self) -> None:
        self.control.request_continue()

    def cancel(self) -> None:
        self.control.request_cancel()

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        """Poll ``predicate(recorded)`` until true (for tests waiting on a report)."""
        deadline = time.monotonic() + timeout
        while not predicate(self.recorded):
            if time.monotonic() > deadline:
                raise TimeoutError("the condition did not become true")
            time.sleep(0.01)
