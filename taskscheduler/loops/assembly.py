"""The loops of one node, built from its :class:`~taskscheduler.services.Services`.

They run in three groups, each in a thread of its own (:func:`taskscheduler.node.run_loops`):

* **dispatch** — the Scheduler first in each round, so a task the API queued as it stored
  it is started as soon as the round begins; then control tasks releasing children, and the
  Dispatcher queuing what was not offered (with the Redis queue). Work they do makes the
  round busy, so the next one, at once, starts what they released or queued. Woken by the
  API's announcements (and by the ends of tasks, which free slots).
* **housekeeping** — the Checker (heartbeats, deadlines, stuck attempts, postponed tasks),
  the callbacks, and the log dumper when rules are configured, at their own pace.
* **timed** — the Producer alone keeps time, so a long Checker sweep never delays a fire.
"""

from __future__ import annotations

from dataclasses import dataclass

from taskscheduler.logdumper.config import load_rules
from taskscheduler.loops.base import Loop
from taskscheduler.loops.callbacks import CallbackLoop
from taskscheduler.loops.checker import CheckerLoop
from taskscheduler.loops.controls import ControlLoop
from taskscheduler.loops.logdumper import LogDumperLoop
from taskscheduler.loops.producer import ProducerLoop
from taskscheduler.loops.scheduler import SchedulerLoop
from taskscheduler.services import Services


@dataclass(frozen=True)
class Loops:
    dispatch: list[Loop]
    housekeeping: list[Loop]
    timed: list[Loop]


def assemble(services: Services) -> Loops:
    """Every loop of a node, sharing the node's engine, locks, queue and worker client."""
    settings = services.settings
    engine, node, locks = services.engine, settings.node_name, services.locks
    lease = settings.lease_seconds
    dispatch: list[Loop] = [
        SchedulerLoop(
            engine,
            services.client,
            secret=settings.worker_secret,
            node=node,
            worker_timeout=settings.heartbeat_timeout_seconds,
            type_limits=settings.limits,
            queue=services.queue,
        ),
        ControlLoop(engine, services.client, services.registry, node=node),
    ]
    if services.redis_queue is not None:
        # Imported here: Redis is an optional extra.
        from taskscheduler.loops.dispatcher import DispatcherLoop

        dispatch.append(DispatcherLoop(engine, services.redis_queue))
    housekeeping: list[Loop] = [
        CheckerLoop(
            engine,
            services.client,
            services.registry,
            node=node,
            heartbeat_timeout=settings.heartbeat_timeout_seconds,
            lease_seconds=lease,
            locks=locks,
        ),
        CallbackLoop(
            engine,
            node=node,
            lease_seconds=lease,
            locks=locks,
            allow=settings.callback_hosts,
            secret=settings.callback_secret,
        ),
    ]
    if settings.logdumper_rules:
        housekeeping.append(
            LogDumperLoop(
                engine,
                load_rules(settings.logdumper_rules),
                locks,
                node=node,
                lease_seconds=lease,
                wakeup=services.wakeup,
            )
        )
    timed: list[Loop] = [
        ProducerLoop(engine, locks, node=node, lease_seconds=lease, wakeup=services.wakeup)
    ]
    return Loops(dispatch, housekeeping, timed)
