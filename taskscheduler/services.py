"""The dependencies of one scheduler node, built once and handed to the API and the loops.

Nothing here is global: a test builds a :class:`Services` over its own database, the
gunicorn entry point builds one per process from the environment, and the loops receive the
same object, so the API and the loops of a node share one engine pool and one metrics
registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine

from taskscheduler.db.engine import make_engine
from taskscheduler.metrics import Metrics
from taskscheduler.queue import build_redis
from taskscheduler.queue.wakeup import Wakeup
from taskscheduler.settings import Settings
from taskscheduler.tasks import effects as finish
from taskscheduler.tasks.actions import TaskActions
from taskscheduler.tasks.create import TaskService
from taskscheduler.tasks.read import TaskQueries
from taskscheduler.tasks.waiters import Finishes
from taskscheduler.triggers.definitions import TriggerService
from taskscheduler.workers.registry import Registry
from taskworker.contract.api import Action, TaskView
from taskworker.errors import Unavailable

#: How long a client should wait before retrying a command no worker client could carry.
NO_CLIENT_RETRY_AFTER_SECONDS = 5


class WorkerCommands(Protocol):
    """How the scheduler reaches the worker a task is on (the worker client implements it).

    The scheduler changes the task's state only after :meth:`command` returned, so a worker
    that cannot be reached (raise :class:`Unavailable`) or refuses (raise a
    :class:`~taskworker.errors.Conflict`) leaves the task as it was.
    """

    def command(self, task: TaskView, action: Action, reason: str | None) -> None:
        """Deliver ``pause``, ``continue``, ``cancel`` or ``rollback`` to ``task.worker``."""

    def summary(self, task: TaskView) -> Any:
        """The plugin's own summary of ``task`` from its worker, or None."""


class NoWorkerClient:
    """Stands in until a worker client is configured: reaching a worker is impossible."""

    def command(self, task: TaskView, action: Action, reason: str | None) -> None:
        raise Unavailable(
            f"task {task.task_id} is on worker {task.worker}, which this node cannot reach "
            f"to {action} it",
            NO_CLIENT_RETRY_AFTER_SECONDS,
        )

    def summary(self, task: TaskView) -> Any:
        return None


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    metrics: Metrics
    registry: Registry
    tasks: TaskService
    actions: TaskActions
    queries: TaskQueries
    commands: WorkerCommands
    wakeup: Wakeup
    triggers: TriggerService
    finishes: Finishes

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        commands: WorkerCommands | None = None,
        multiprocess_dir: str | None = None,
        engine: Engine | None = None,
    ) -> Services:
        """Wire a node; ``engine`` lets a caller share a pool it already has."""
        eng = engine or make_engine(settings.db_url)
        finish.wake_on_end(settings.limits)  # the reports of these types' ends free a slot
        metrics = Metrics(multiprocess_dir)
        registry = Registry(eng)
        reach = commands or NoWorkerClient()
        wakeup = Wakeup(settings.redis_url, queue=build_redis(settings))
        finishes = Finishes(settings.redis_url)
        finishes.install(eng)
        tasks = TaskService(
            eng, registry, metrics, reach, settings.worker_secret, wakeup=wakeup, finishes=finishes
        )
        return cls(
            settings=settings,
            engine=eng,
            metrics=metrics,
            registry=registry,
            tasks=tasks,
            actions=TaskActions(eng, tasks, registry, metrics, reach),
            queries=TaskQueries(eng),
            commands=reach,
            wakeup=wakeup,
            triggers=TriggerService(eng, tasks),
            finishes=finishes,
        )

    def close(self) -> None:
        self.engine.dispose()
