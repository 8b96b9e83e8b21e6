"""Running loops: each loop is a ``tick(now) -> int`` (how much work it did); the runner adds
the pacing, the backoff after errors, the stop, and what the node's metrics say of each loop.

A tick that handled a full ``batch`` is followed at once by the next one (a backlog drains
at full speed); one that handled less left nothing it could do now, so no pass is spent
finding that out while the tasks just started compete for the same CPUs. A round where no
loop left a backlog waits ``interval``, or less when ``woken`` is set (new work announced,
see :mod:`taskscheduler.queue.wakeup`). An error is logged and waits longer each time, up to
:data:`MAX_BACKOFF_SECONDS`, so a database outage does not become a busy loop of stack traces.

After each tick the runner reports to the node's metrics (:mod:`taskscheduler.metrics`):
when the tick began and its lag, how much later than ``interval`` after the previous tick
it began (a long tick of another loop of the group, a backoff after errors, a process
starved of CPU), and, for each lease the loop holds to work alone among the nodes, whether
this node holds it now.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from taskscheduler.db.models import utcnow
from taskscheduler.locks import Ownership
from taskscheduler.metrics import Metrics

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 30.0


class Loop(Protocol):
    name: str
    #: A tick that handled this many may have left more for the next one.
    batch: int

    def tick(self, now: datetime) -> int:
        """Do one pass; return how many items it handled."""


def leases_of(loop: Loop) -> list[Ownership]:
    """The leases ``loop`` holds to work alone among the nodes: the loops keep each as an
    :class:`~taskscheduler.locks.Ownership` attribute (one, or a list of shards)."""
    found: list[Ownership] = []
    for value in getattr(loop, "__dict__", {}).values():
        if isinstance(value, Ownership):
            found.append(value)
        elif isinstance(value, list | tuple):
            found.extend(item for item in value if isinstance(item, Ownership))
    return found


class LoopRunner:
    def __init__(
        self,
        loops: Sequence[Loop],
        interval: float,
        stop: threading.Event,
        woken: threading.Event | None = None,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self.loops = loops
        self.interval = interval
        self.stop = stop
        #: set to end an idle wait early; ``stop`` must set it too, to end the wait at once
        self.woken = woken or stop
        self.metrics = metrics
        self._failures = dict.fromkeys((loop.name for loop in loops), 0)
        #: when each loop's last tick began (monotonic seconds)
        self._began: dict[str, float] = {}

    def run(self) -> None:
        while not self.stop.is_set():
            busy = False
            pause = self.interval
            for loop in self.loops:
                self._began_tick(loop)
                try:
                    busy |= loop.tick(utcnow()) >= loop.batch
                    self._failures[loop.name] = 0
                except Exception:
                    self._failures[loop.name] += 1
                    failures = self._failures[loop.name]
                    pause = max(pause, min(MAX_BACKOFF_SECONDS, self.interval * 2**failures))
                    log.exception("loop %s failed (%d in a row)", loop.name, failures)
                self._report_leases(loop)
            if not busy:
                self.woken.wait(pause)
                if self.woken is not self.stop:
                    self.woken.clear()

    def _began_tick(self, loop: Loop) -> None:
        """Note the tick's start and, in the metrics, its lag (none for the first tick)."""
        began = time.monotonic()
        previous = self._began.get(loop.name)
        self._began[loop.name] = began
        if self.metrics is not None:
            lag = 0.0 if previous is None else max(0.0, began - previous - self.interval)
            self.metrics.loop_ticked(loop.name, started=time.time(), lag=lag)

    def _report_leases(self, loop: Loop) -> None:
        if self.metrics is None:
            return
        for lease in leases_of(loop):
            # the tick just asked for it: holding a token means holding the lease
            self.metrics.lease(lease.name, lease.token is not None)
