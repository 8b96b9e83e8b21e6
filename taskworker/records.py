"""What a worker knows of one task attempt it hosts: its own state, its plugin, its step.

The worker keeps its own copy of the task's state, moved with the same table as the
scheduler's (:func:`taskworker.states.decide`), so it refuses what the scheduler would
refuse (409, nothing changes) even when a command arrives late or twice. The scheduler
stays the authority: this copy only decides what the worker may do with the plugin.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from taskworker.context import Control, TaskContext
from taskworker.contract.api import Progress, TaskView
from taskworker.contract.worker import WorkerCreateBody
from taskworker.states import ENDED, State, decide
from taskworker.steps import Completion, Step
from taskworker.task import Task


@dataclass(eq=False)
class WorkerTask:
    task_type: str
    body: WorkerCreateBody
    plugin: Task
    control: Control
    ctx: TaskContext
    state: State = State.CREATE
    paused_from: State | None = None
    outcome: str | None = None
    result: Any = None
    error: Any = None
    progress: Progress = field(default_factory=Progress)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    heartbeat_at: datetime | None = None
    #: The current step, if any.
    step: Step | None = None
    #: An asynchronous task's run returned: its work goes on elsewhere, it holds no slot.
    detached: bool = False
    #: The step ignored cancel past the grace period; it runs on, unaccounted.
    abandoned: bool = False
    #: The worker is stopping: the step's end is reported as an interruption.
    interrupted: bool = False
    #: How ``clean`` will finish the task after a rollback (rolled_back or rollback_failed).
    finish_outcome: str | None = None
    #: A step that ended while the task was paused; applied on ``continue``.
    held: Completion | None = None

    @property
    def task_id(self) -> int:
        return self.body.dispatch.task_id

    @property
    def attempt(self) -> int:
        return self.body.dispatch.attempt

    @property
    def step_alive(self) -> bool:
        return self.step is not None and self.step.is_alive() and not self.abandoned

    @property
    def holds_slot(self) -> bool:
        """Whether the task counts against the worker's capacity."""
        if self.step_alive:
            return True
        if self.state in (State.CREATE, State.PREPARE, State.PAUSE):
            return True
        # a rollback holds its slot while its step runs, and no longer: it then only waits
        return self.state is State.RUNNING and not self.detached

    @property
    def ended(self) -> bool:
        """Its step has ended for good: it waits only for commands (``clean``) or nothing."""
        done = self.state in ENDED or self.finish_outcome is not None  # a rollback that ended
        return done and not self.step_alive

    def move(self, trigger: str, outcome: str | None = None) -> None:
        """Apply ``trigger`` by the state table, or raise ``TransitionRefused`` (409)."""
        moved = decide(
            self.state,
            trigger,
            paused_from=self.paused_from,
            outcome=outcome,
            task_id=self.task_id,
        )
        self.state = moved.to_state
        self.paused_from = moved.paused_from
        if moved.outcome is not None:
            self.outcome = moved.outcome.value
        self.updated_at = datetime.now(UTC)

    def view(self, worker: str) -> TaskView:
        info, arg = self.body.create_info, self.body.process_arg
        return TaskView(
            task_id=self.task_id,
            task_type=self.task_type,
            task_name=info.task_name,
            task_status=self.state.value,
            outcome=self.outcome,
            important_level=info.important_level,
            parent_task_id=info.parent_task_id,
            control_task_id=info.control_task_id,
            params=self.ctx.params,
            result=self.result,
            error=self.error,
            retry_count=0,
            max_retry=arg.max_retry,
            attempt=self.attempt,
            progress=self.progress,
            worker=worker,
            created_at=self.created_at,
            updated_at=self.updated_at,
            resources=sorted({*(info.resources or ()), *self.plugin.resources(self.ctx.params)}),
            deadline_second=arg.deadline_second,
            paused_from=self.paused_from.value if self.paused_from else None,
            heartbeat_at=self.heartbeat_at,
        )


class TaskTable:
    """The worker's tasks by id: the live ones, and the last ``keep`` ended ones, which
    still answer queries and late commands.

    Counting the slots in use looks at the live tasks only: an ended task whose step is over
    is retired to a bounded, ordered store as soon as a count finds it, so a worker that has
    run a million tasks admits a new one as fast as a fresh worker.
    """

    def __init__(self, keep: int) -> None:
        self._live: dict[int, WorkerTask] = {}
        self._retired: OrderedDict[int, WorkerTask] = OrderedDict()
        self._keep = keep

    def get(self, task_id: int) -> WorkerTask | None:
        """The task; a retired one comes back among the live, since whatever asks for it may
        start a step of it again (a rollback): the next count retires it again if not."""
        task = self._live.get(task_id)
        if task is None and (task := self._retired.pop(task_id, None)) is not None:
            self._live[task_id] = task
        return task

    def add(self, task: WorkerTask) -> None:
        self._retired.pop(task.task_id, None)
        self._live[task.task_id] = task

    def live(self) -> list[WorkerTask]:
        """The tasks not yet retired (a snapshot: safe to iterate while steps change it)."""
        return list(self._live.values())

    def used_slots(self, besides: WorkerTask | None = None) -> int:
        """Slots held now (not counting ``besides``), retiring what has ended for good."""
        used = 0
        for task in self.live():
            if task.ended:
                del self._live[task.task_id]
                self._retired[task.task_id] = task
            elif task is not besides and task.holds_slot:
                used += 1
        while len(self._retired) > self._keep:
            self._retired.popitem(last=False)
        return used
