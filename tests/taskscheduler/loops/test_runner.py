"""What the loop runner tells the node's metrics: each loop's last tick and its lag, and
whether this node holds each lease a loop works under."""

from __future__ import annotations

import threading
import time
from datetime import datetime

from taskscheduler.locks import Ownership
from taskscheduler.locks.local import LocalLocks
from taskscheduler.loops.base import LoopRunner
from taskscheduler.metrics import Metrics
from tests.scrape import key, samples

INTERVAL = 0.05


class Sweeping:
    """A loop that works only while it holds its lease, as the Checker does."""

    name = "sweeping"
    batch = 10

    def __init__(self, ownership: Ownership, ticks: int, stop: threading.Event) -> None:
        self.sweep = ownership
        self.ticks = ticks
        self.stop = stop

    def tick(self, now: datetime) -> int:
        self.ticks -= 1
        if self.ticks <= 0:
            self.stop.set()
        return 0 if not self.sweep.hold() else 1


class Slow:
    """A loop whose tick takes longer than the runner's interval."""

    name = "slow"
    batch = 10

    def tick(self, now: datetime) -> int:
        time.sleep(INTERVAL * 3)
        return 0


def test_each_tick_reports_its_time_and_how_late_it_began_and_the_leases_held():
    # Given a loop holding its lease and a slow one beside it, in one runner
    metrics, stop, locks = Metrics(), threading.Event(), LocalLocks()
    held = Ownership(locks, "sweep:test", "node-a", ttl=10)
    before = time.time()
    # When they run three rounds
    runner = LoopRunner([Sweeping(held, 3, stop), Slow()], INTERVAL, stop, metrics=metrics)
    runner.run()
    found = samples(metrics.render()[0].decode())
    # Then each loop's last tick is recent, and the slow one made the other late by its tick
    for loop in ("sweeping", "slow"):
        assert found[key("taskscheduler_loop_last_tick_timestamp_seconds", loop=loop)] >= before
    lag = found[key("taskscheduler_loop_lag_seconds", loop="sweeping")]
    assert INTERVAL * 3 <= lag < INTERVAL * 3 + 1.0
    # And this node holds the loop's lease
    assert found[key("taskscheduler_lease_held", lease="sweep:test")] == 1


def test_a_lease_another_node_holds_is_reported_as_not_held():
    # Given a lease another node holds
    metrics, stop, locks = Metrics(), threading.Event(), LocalLocks()
    assert locks.acquire("sweep:test", "node-b", 10) is not None
    # When this node's loop ticks once
    loop = Sweeping(Ownership(locks, "sweep:test", "node-a", ttl=10), 1, stop)
    LoopRunner([loop], INTERVAL, stop, metrics=metrics).run()
    # Then the lease is reported as not held here
    found = samples(metrics.render()[0].decode())
    assert found[key("taskscheduler_lease_held", lease="sweep:test")] == 0
