"""The wiring root: the dependencies of one scheduler node, built once, in one place.

Both halves of a node are built from a :class:`Services`: the API (``create_app``) in each
gunicorn process, and the loops (:func:`taskscheduler.loops.assembly.assemble`) in the
loops process, so they share one definition of how a node is put together. Nothing here is
global: a test builds a :class:`Services` over its own database; the environment is read
only at the edge (:mod:`taskscheduler.settings`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from taskscheduler.db.engine import make_engine
from taskscheduler.locks import Locks, make_locks
from taskscheduler.metrics import Metrics
from taskscheduler.queue import Queue, build_redis
from taskscheduler.queue.database import DatabaseQueue
from taskscheduler.queue.wakeup import Wakeup
from taskscheduler.settings import Settings
from taskscheduler.tasks.actions import TaskActions
from taskscheduler.tasks.addresses import Addresses
from taskscheduler.tasks.create import TaskCreator
from taskscheduler.tasks.effects import wake_on_end
from taskscheduler.tasks.read import TaskQueries
from taskscheduler.tasks.transitions import count_moves
from taskscheduler.tasks.waiters import Finishes
from taskscheduler.triggers.definitions import TriggerDefinitions
from taskscheduler.workers.client import NoWorkerClient, WorkerClient, WorkerCommands
from taskscheduler.workers.registry import Registry

if TYPE_CHECKING:  # Redis is an optional extra
    from taskscheduler.queue.redis import RedisQueue


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    metrics: Metrics
    registry: Registry
    tasks: TaskCreator
    actions: TaskActions
    queries: TaskQueries
    #: How the API's actions reach the worker holding a task.
    commands: WorkerCommands
    #: The worker contract's client, for the loops (signed, pooled per worker).
    client: WorkerClient
    wakeup: Wakeup
    triggers: TriggerDefinitions
    finishes: Finishes
    locks: Locks
    #: The queue the Scheduler loop takes from: Redis Streams when configured (fed by the
    #: Dispatcher and by the API as it stores tasks), else the tasks table itself.
    queue: Queue
    #: :attr:`queue` when it is the Redis queue (the Dispatcher then runs), else None.
    redis_queue: RedisQueue | None

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        reach_workers: bool = False,
        commands: WorkerCommands | None = None,
        multiprocess_dir: str | None = None,
        engine: Engine | None = None,
    ) -> Services:
        """Wire a node. ``reach_workers``: the API's actions go to the workers through the
        contract's client (a node does; a test may give ``commands`` of its own, or none,
        so that reaching a worker is impossible). ``engine`` lets a caller share a pool it
        already has."""
        eng = engine or make_engine(settings.db_url)
        # the ends of these types' tasks, however they are written, free a slot
        wake_on_end(eng, settings.limits)
        metrics = Metrics(multiprocess_dir)
        count_moves(eng, metrics.count_moves)  # every move this node commits, counted once
        registry = Registry(eng)
        client = WorkerClient(settings.worker_secret, settings.node_name)
        reach: WorkerCommands = commands or (client if reach_workers else NoWorkerClient())
        redis_queue = build_redis(settings)
        wakeup = Wakeup(settings.redis_url, queue=redis_queue)
        finishes = Finishes(settings.redis_url)
        finishes.install(eng)  # the tasks this node finishes are announced to waiters
        tasks = TaskCreator(
            eng,
            registry,
            settings.worker_secret,
            announcer=wakeup,
            addresses=Addresses(eng, settings.callback_hosts),
            max_nodes=settings.topology_max_nodes,
        )
        queries = TaskQueries(eng, finishes=finishes, commands=reach)
        return cls(
            settings=settings,
            engine=eng,
            metrics=metrics,
            registry=registry,
            tasks=tasks,
            actions=TaskActions(eng, queries, registry, reach, announcer=wakeup),
            queries=queries,
            commands=reach,
            client=client,
            wakeup=wakeup,
            triggers=TriggerDefinitions(eng, tasks),
            finishes=finishes,
            locks=make_locks(settings, eng),
            queue=redis_queue or DatabaseQueue(eng),
            redis_queue=redis_queue,
        )

    def close(self) -> None:
        self.engine.dispose()
