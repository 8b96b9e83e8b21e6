"""Running loops: each loop is a ``tick(now) -> int`` (how much work it did); the runner adds
the pacing, the backoff after errors, and the stop.

A tick that handled a full ``batch`` is followed at once by the next one (a backlog drains
at full speed); one that handled less left nothing it could do now, so no pass is spent
finding that out while the tasks just started compete for the same CPUs. A round where no
loop left a backlog waits ``interval``, or less when ``woken`` is set (new work announced,
see :mod:`taskscheduler.queue.wakeup`). An error is logged and waits longer each time, up to
:data:`MAX_BACKOFF_SECONDS`, so a database outage does not become a busy loop of stack traces.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from taskscheduler.db.models import utcnow

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 30.0


class Loop(Protocol):
    name: str
    #: A tick that handled this many may have left more for the next one.
    batch: int

    def tick(self, now: datetime) -> int:
        """Do one pass; return how many items it handled."""


class LoopRunner:
    def __init__(
        self,
        loops: Sequence[Loop],
        interval: float,
        stop: threading.Event,
        woken: threading.Event | None = None,
    ) -> None:
        self.loops = loops
        self.interval = interval
        self.stop = stop
        #: set to end an idle wait early; ``stop`` must set it too, to end the wait at once
        self.woken = woken or stop
        self._failures = dict.fromkeys((loop.name for loop in loops), 0)

    def run(self) -> None:
        while not self.stop.is_set():
            busy = False
            pause = self.interval
            for loop in self.loops:
                try:
                    busy |= loop.tick(utcnow()) >= loop.batch
                    self._failures[loop.name] = 0
                except Exception:
                    self._failures[loop.name] += 1
                    failures = self._failures[loop.name]
                    pause = max(pause, min(MAX_BACKOFF_SECONDS, self.interval * 2**failures))
                    log.exception("loop %s failed (%d in a row)", loop.name, failures)
            if not busy:
                self.woken.wait(pause)
                if self.woken is not self.stop:
                    self.woken.clear()
