"""The steps behind each action on one task attempt: what prepare, running, pause, continue,
rollback, change, clean and cancel do to the task and its plugin, and how a step's end is
reported.

Pause and cancel reach a running step only through its checkpoints (Python cannot stop a
thread), so:

* ``pause`` flips the control flag; the step stops at its next checkpoint. A step that ends
  while paused keeps its result until ``continue``, so the scheduler never hears of a
  success while it believes the task paused;
* ``cancel`` finishes the task at once and flips the flag; a step that has not stopped
  after the grace period is abandoned (logged to the task), and its late end is ignored.

A revert (a task whose dispatch names the finished task it ``reverts``) goes through the
same steps, but its work is the plugin's ``rollback`` of that task: ``prepare`` runs no
plugin check (they check what ``run`` needs), ``running`` runs ``rollback`` with the
reverted task's params, result and id, and its end is reported as a run's end, whatever
the plugin's ``blocking``. A revert is never rolled back itself.

Every state change happens under the executor's lock and is decided by the state table;
plugin code never runs under the lock. :class:`StepActions` is the half of the executor that
concerns one task; :class:`~taskworker.executor.Executor` adds the set of tasks, capacity
and stopping.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from taskworker.context import Control, TaskContext
from taskworker.contract.api import ChangeBody, Progress
from taskworker.contract.codec import decode
from taskworker.contract.worker import Reverted, WorkerCreateBody
from taskworker.errors import Conflict
from taskworker.records import TaskTable, WorkerTask
from taskworker.reporter import Reporter
from taskworker.states import State, Trigger
from taskworker.steps import Completion, Step, start_step
from taskworker.task import Task

INTERRUPTED = {
    "message": "interrupted: the worker stopped before the step ended",
    "retryable": True,
}


class StepActions:
    """Needs the executor's lock, tasks, reporter and timings (set by ``Executor``)."""

    name: str
    _lock: threading.RLock
    _tasks: TaskTable
    _reporter: Reporter
    _grace: float
    _prepare_timeout: float
    _scheduler_url: str

    # The report sink every step's context speaks to (TaskContext -> reporter).

    def log(self, task_id: int, attempt: int, level: str, message: str) -> None:
        if (task := self._tasks.get(task_id)) is not None:
            self._reporter.log(task.task_type, task_id, attempt, level, message)

    def progress(self, task_id: int, attempt: int, percent: float, message: str) -> None:
        task = self._tasks.get(task_id)
        if task is not None and task.attempt == attempt and not task.abandoned:
            task.progress = Progress(percent, message)
            task.heartbeat_at = datetime.now(UTC)
            self._reporter.progress(task.task_type, task_id, attempt, percent, message)

    def heartbeat(self, task_id: int, attempt: int) -> None:
        task = self._tasks.get(task_id)
        if task is not None and task.attempt == attempt and not task.abandoned:
            task.heartbeat_at = datetime.now(UTC)
            self._reporter.heartbeat(task.task_type, task_id, attempt)

    def _prepare(self, task: WorkerTask) -> None:
        """Synchronous: the scheduler commits ``prepare`` only once the checks passed."""
        with self._lock:
            task.move(Trigger.PREPARE)
        done: list[Completion] = []
        check = task.plugin.prepare if task.body.dispatch.reverts is None else _no_check
        task.step = start_step(
            f"{task.task_type}-{task.task_id}-prepare",
            lambda: check(task.ctx),
            done.append,
        )
        task.step.join(self._prepare_timeout)
        with self._lock:
            if task.abandoned or task.state is not State.PREPARE:
                return
            if not done:
                task.control.request_cancel()
                task.abandoned = True
                done.append(
                    Completion(
                        False,
                        error={"message": f"prepare took longer than {self._prepare_timeout} s"},
                    )
                )
            if not done[0].success:
                task.error = done[0].error
                task.move(Trigger.FAIL)

    def _running(self, task: WorkerTask) -> None:
        reverts = task.body.dispatch.reverts
        with self._lock:
            task.move(Trigger.RUN)
            task.step = start_step(
                f"{task.task_type}-{task.task_id}-{'run' if reverts is None else 'revert'}",
                lambda: task.plugin.run(task.ctx) if reverts is None else _revert(task, reverts),
                lambda done: self._ran(task, done),
            )

    def _ran(self, task: WorkerTask, done: Completion) -> None:
        with self._lock:
            if not self._live(task, done) or task.state not in (State.RUNNING, State.PAUSE):
                return
            if task.state is State.PAUSE:
                task.held = done
                return
            synchronous = type(task.plugin).blocking or task.body.dispatch.reverts is not None
            if done.success and not synchronous:
                task.detached = True  # running until someone notifies the scheduler
                return
            task.result, task.error = done.result, done.error
            task.move(Trigger.SUCCEED if done.success else Trigger.FAIL)
            self._report_end(task, done)

    def _pause(self, task: WorkerTask) -> None:
        with self._lock:
            task.move(Trigger.PAUSE)
            task.control.request_pause()

    def _continue(self, task: WorkerTask) -> None:
        with self._lock:
            task.move(Trigger.CONTINUE)
            task.control.request_continue()
            held, task.held = task.held, None
        if held is not None:
            self._ran(task, held)

    def _rollback(self, task: WorkerTask) -> None:
        if "rollback" not in type(task.plugin).steps():
            raise Conflict(f"the {task.task_type} plugin cannot roll back")
        if (reverts := task.body.dispatch.reverts) is not None:
            raise Conflict(
                f"task {task.task_id} reverts task {reverts.task_id}: a revert is not rolled "
                "back (revert the task again once this one ended)"
            )
        with self._lock:
            task.move(Trigger.ROLLBACK)
            before, task.held = task.step, None
            task.control.request_cancel()  # a run paused mid-way stops before it is undone
            task.control = Control()
            task.ctx = self._context(
                task.plugin,
                task.task_type,
                task.body,
                task.ctx.params,
                task.control,
                result=task.result,
            )

            def undo() -> None:
                if before is not None:
                    before.join(self._grace)
                task.plugin.rollback(task.ctx)

            task.step = start_step(
                f"{task.task_type}-{task.task_id}-rollback",
                undo,
                lambda done: self._rolled_back(task, done),
            )

    def _rolled_back(self, task: WorkerTask, done: Completion) -> None:
        with self._lock:
            if not self._live(task, done):
                return
            task.error = None if done.success else done.error
            task.finish_outcome = "rolled_back" if done.success else "rollback_failed"
            self._report_end(task, done)

    def _change(self, task: WorkerTask, body: bytes) -> None:
        wanted = decode(body or b"{}", ChangeBody, root="")
        with self._lock:
            if task.step_alive or task.state in (State.RUNNING, State.ROLLBACK, State.FINISH):
                raise Conflict(f"task {task.task_id} is {task.state}; change it while not running")
            if wanted.params is not None:
                params = type(task.plugin).validate_params(wanted.params)
                task.plugin.change(task.ctx, params)
                task.ctx.params = params

    def _clean(self, task: WorkerTask) -> None:
        with self._lock:
            if task.step_alive:
                raise Conflict(f"task {task.task_id} still runs its step; cancel it first")
            task.move(Trigger.FINISH, task.finish_outcome)
        done: list[Completion] = []
        start_step(
            f"{task.task_type}-{task.task_id}-clean",
            lambda: task.plugin.clean(task.ctx),
            done.append,
        ).join(self._prepare_timeout)
        if not done or not done[0].success:
            self.log(task.task_id, task.attempt, "warning", f"clean did not succeed: {done}")

    def _cancel(self, task: WorkerTask) -> None:
        with self._lock:
            task.move(Trigger.CANCEL)
            task.control.request_cancel()
            step = task.step
        if step is not None and step.is_alive():
            threading.Thread(
                target=self._abandon_after_grace,
                args=(task, step),
                name=f"cancel-{task.task_id}",
                daemon=True,
            ).start()

    def _abandon_after_grace(self, task: WorkerTask, step: Step) -> None:
        step.join(self._grace)
        if step.is_alive():
            self.log(
                task.task_id,
                task.attempt,
                "error",
                f"the step ignored cancel for {self._grace} s; abandoned",
            )
            task.abandoned = True

    def _live(self, task: WorkerTask, done: Completion) -> bool:
        """Whether a step's end still matters (not abandoned, superseded or cancelled)."""
        if task.abandoned or self._tasks.get(task.task_id) is not task:
            return False
        if task.interrupted and done.cancelled:
            task.result, task.error = None, INTERRUPTED
            if task.state is State.RUNNING:
                task.move(Trigger.FAIL)
            self._report_end(task, Completion(False, error=INTERRUPTED))
            return False
        return task.state is not State.FINISH

    def _report_end(self, task: WorkerTask, done: Completion) -> None:
        self._reporter.notify(
            task.task_type,
            task.task_id,
            task.attempt,
            success=done.success,
            result=done.result,
            error=done.error,
            step="rollback" if task.state is State.ROLLBACK else "run",
        )

    def _context(
        self,
        plugin: Task,
        task_type: str,
        body: WorkerCreateBody,
        params: dict[str, Any],
        control: Control,
        *,
        result: Any = None,
    ) -> TaskContext:
        task_id = body.dispatch.task_id
        reverts = body.dispatch.reverts
        ctx: TaskContext | None = None
        ctx = TaskContext(
            task_id=task_id,
            task_type=task_type,
            attempt=body.dispatch.attempt,
            params=params,
            sink=self,
            control=control,
            on_pause=lambda: plugin.pause(ctx),  # type: ignore[arg-type]
            on_resume=lambda: plugin.resume(ctx),  # type: ignore[arg-type]
            notify_url=f"{self._scheduler_url}/v1/task/{task_type}?task_id={task_id}&action=notify",
            notify_token=body.dispatch.notify_token,
            target=body.dispatch.target,
            result=result if reverts is None else reverts.result,
            reverted_task_id=None if reverts is None else reverts.task_id,
        )
        return ctx


def _no_check(ctx: TaskContext) -> None:
    """A revert's ``prepare``: the plugin's checks are about what ``run`` needs."""


def _revert(task: WorkerTask, reverts: Reverted) -> dict[str, Any]:
    """A revert's work: the plugin's ``rollback`` of the task it reverts (the context
    carries that task's params, result and id); the revert's result names that task."""
    task.plugin.rollback(task.ctx)
    return {"reverted_task_id": reverts.task_id}
