"""The tasks a worker hosts: accepting them within capacity, routing actions, stopping.

Every step runs in a thread of its own; at most ``capacity`` tasks hold a slot at once (a
task holds one from ``create`` until its step ends, except an asynchronous task whose work
went elsewhere), and a create beyond that is refused with 503 and ``Retry-After``.

Stopping the worker waits the grace period for running steps, then interrupts them at their
checkpoints and reports each one as interrupted (retryable), so the scheduler hears the end
of every attempt it gave this worker. What each action does to one task is in
:mod:`taskworker.actions`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from taskworker.actions import INTERRUPTED, StepActions
from taskworker.context import Control
from taskworker.contract.api import Action, Query, StatusView, TaskView
from taskworker.contract.worker import WorkerCreateBody, WorkerHeartbeatView
from taskworker.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PoolFull,
    StaleAttempt,
    Unavailable,
)
from taskworker.records import TaskTable, WorkerTask
from taskworker.reporter import Reporter
from taskworker.states import State, Trigger
from taskworker.steps import Completion, run_step
from taskworker.task import Task

log = logging.getLogger(__name__)

#: Finished tasks kept for queries (``clean``, ``status``) before the oldest are forgotten.
KEEP_FINISHED = 1000
#: After the grace period, how long interrupted steps get to reach a checkpoint.
INTERRUPT_WAIT_SECONDS = 1.0
#: A stopping worker asks for creates to come back after this (another worker will serve).
DRAINING_RETRY_AFTER_SECONDS = 5


class Executor(StepActions):
    def __init__(
        self,
        plugins: dict[str, type[Task]],
        reporter: Reporter,
        *,
        name: str,
        capacity: int,
        grace_seconds: float,
        prepare_timeout: float,
        scheduler_url: str,
    ) -> None:
        self.name = name
        self.capacity = capacity
        self._plugins = plugins
        self._reporter = reporter
        self._grace = grace_seconds
        self._prepare_timeout = prepare_timeout
        self._scheduler_url = scheduler_url
        self._lock = threading.RLock()
        self._tasks = TaskTable(KEEP_FINISHED)
        self._draining = False

    # The contract.

    def create(self, task_type: str, body: WorkerCreateBody) -> tuple[TaskView, bool]:
        """Accept a task attempt; True when new (False: the same attempt was sent again)."""
        plugin = self._plugin(task_type)
        if body.create_info.task_type not in (None, task_type):
            raise InvalidInput("create_info.task_type", f"differs from the path's {task_type!r}")
        params = plugin.validate_params(body.params)
        if body.dispatch.reverts is not None and "rollback" not in plugin.steps():
            raise Conflict(f"the {task_type} plugin cannot roll back: it has nothing to revert by")
        task_id, attempt = body.dispatch.task_id, body.dispatch.attempt
        with self._lock:
            if self._draining:
                raise Unavailable("the worker is stopping", DRAINING_RETRY_AFTER_SECONDS)
            known = self._tasks.get(task_id)
            if known is not None and attempt < known.attempt:
                raise StaleAttempt(task_id, attempt, known.attempt)
            if known is not None and attempt == known.attempt:
                return known.view(self.name), False
            if self._tasks.used_slots(besides=known) >= self.capacity:
                raise PoolFull(self.capacity)
            if known is not None:
                known.abandoned = True  # superseded: its late reports and end are ignored
                known.control.request_cancel()
            task = self._new(plugin, task_type, body, params)
            task.move(Trigger.CREATE)
            self._tasks.add(task)
            return task.view(self.name), True

    def act(
        self, task_type: str, task_id: int, action: Action, attempt: int, body: bytes
    ) -> TaskView:
        task = self._task(task_type, task_id, attempt)
        handler = {
            Action.PREPARE: self._prepare,
            Action.RUNNING: self._running,
            Action.PAUSE: self._pause,
            Action.CONTINUE: self._continue,
            Action.ROLLBACK: self._rollback,
            Action.CHANGE: lambda t: self._change(t, body),
            Action.CLEAN: self._clean,
            Action.CANCEL: self._cancel,
        }.get(action)
        if handler is None:
            raise InvalidInput("action", f"{action} is the scheduler's, not a worker's")
        handler(task)
        return task.view(self.name)

    def query(self, task_type: str, task_id: int, what: Query | None, attempt: int | None) -> Any:
        task = self._task(task_type, task_id, attempt)
        if what is None:
            return task.view(self.name)
        if what is Query.STATUS:
            return StatusView(task.task_id, task.state.value, task.outcome)
        if what is Query.PROGRESS:
            return task.progress
        if what is Query.HEARTBEAT:
            return WorkerHeartbeatView(task.task_id, task.heartbeat_at, self.name)
        done = run_step(lambda: task.plugin.summary(task.ctx), f"{task_type}.summary")
        return done.result if done.success else {"error": done.error}

    # Stopping.

    def drain(self) -> None:
        """Take no new tasks (503); what runs goes on."""
        with self._lock:
            self._draining = True

    def shutdown(self) -> None:
        """Let steps end within the grace period, then interrupt and report the rest."""
        self.drain()
        deadline = time.monotonic() + self._grace
        for task in self._tasks.live():
            if task.step is not None:
                task.step.join(max(0.0, deadline - time.monotonic()))
        late = [t for t in self._tasks.live() if t.step_alive]
        for task in late:
            task.interrupted = True
            task.control.request_cancel()
        deadline = time.monotonic() + INTERRUPT_WAIT_SECONDS
        for task in late:
            assert task.step is not None
            task.step.join(max(0.0, deadline - time.monotonic()))
            with self._lock:
                if task.step.is_alive() and not task.abandoned:
                    task.abandoned = True
                    self._report_end(task, Completion(False, error=INTERRUPTED))

    def status(self) -> dict[str, Any]:
        with self._lock:
            used = self._tasks.used_slots()
            return {
                "name": self.name,
                "capacity": self.capacity,
                "used": used,
                "draining": self._draining,
            }

    def beat(self) -> int:
        """Heartbeat every task whose step runs here; return how many there are."""
        live = [t for t in self._tasks.live() if t.step_alive]
        for task in live:
            self.heartbeat(task.task_id, task.attempt)
        return len(live)

    # Helpers.

    def _plugin(self, task_type: str) -> type[Task]:
        plugin = self._plugins.get(task_type)
        if plugin is None:
            raise NotFound("task type", task_type)
        return plugin

    def _task(self, task_type: str, task_id: int, attempt: int | None) -> WorkerTask:
        self._plugin(task_type)
        task = self._tasks.get(task_id)
        if task is None or task.task_type != task_type:
            raise NotFound(f"{task_type} task", task_id)
        if attempt is not None and attempt < task.attempt:
            raise StaleAttempt(task_id, attempt, task.attempt)
        if attempt is not None and attempt > task.attempt:
            raise NotFound(f"attempt {attempt} of task", task_id)
        return task

    def _new(
        self, plugin: type[Task], task_type: str, body: WorkerCreateBody, params: dict[str, Any]
    ) -> WorkerTask:
        instance, control = plugin(), Control()
        ctx = self._context(instance, task_type, body, params, control)
        return WorkerTask(task_type, body, instance, control, ctx, state=State.INIT)
