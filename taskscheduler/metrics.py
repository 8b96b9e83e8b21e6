"""Prometheus metrics of one scheduler node: its API processes and its loops process.

Every :class:`Metrics` has its own registry, so two apps in one process (tests) never
collide on metric names and nothing lives in a global.

A node runs several processes: gunicorn's API processes and the loops process. A scrape
must see the node, not whichever process answered, so ``taskscheduler serve`` and
``standalone`` run in prometheus-client's multiprocess mode: the node makes a fresh
directory, names it in ``PROMETHEUS_MULTIPROC_DIR`` before any of its processes imports
prometheus-client (which chooses where values live when imported), and removes it when it
exits. Each process then writes its values to memory-mapped files there, and
:meth:`Metrics.render` merges every process's files: counters and histograms are summed
(a process that exited keeps counting in the sum, so a counter never goes down), and each
gauge has one writer at a time, whose latest value wins (``mostrecent``):

* ``queue_depth`` and ``workers`` are read from the database by the API process that
  answers a scrape (:mod:`taskscheduler.api.health`), at most every
  :data:`SAMPLE_SECONDS`; the latest reading of any process is what every scrape shows;
* ``loop_lag_seconds``, ``loop_last_tick_timestamp_seconds`` and ``lease_held`` are set by the loops
  process after each tick (:mod:`taskscheduler.loops.base`).

Every label takes its values from a fixed set (triggers, outcomes, levels 0-9, the worker
statuses, the loops and their leases): each new value is a series held in memory and sent
in every scrape, so a label a client could invent values for would grow both without end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

#: Request latency buckets: the API answers in about a millisecond; tails matter more.
LATENCY_BUCKETS_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
#: The methods counted by name; any other is counted as ``other``.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The priorities a task may have (``important_level``): each always has a queue sample.
LEVELS = range(10)
#: The statuses the registry stores for a worker; any other is counted as ``other``.
WORKER_STATUSES = ("active", "draining", "lost", "stopped")
#: A move without an outcome (every move but the one to ``finish``) counts as this one.
NO_OUTCOME = "none"
#: The longest the database-read gauges may be old when a scrape asks: a burst of scrapes
#: costs one reading per API process in this time, and no scrape sees older numbers.
SAMPLE_SECONDS = 2.0


class Metrics:
    """The node's metrics: the API counts requests, the task writer counts moves, a scrape
    samples the queue and the workers, the loops report their pace and their leases."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        self.transitions = Counter(
            "taskscheduler_transitions",
            "Task moves committed, by trigger and outcome (none: not a move to finish).",
            ["trigger", "outcome"],
            registry=self.registry,
        )
        self.api_requests = Counter(
            "taskscheduler_api_requests",
            "API requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.api_latency = Histogram(
            "taskscheduler_api_request_seconds",
            "Time to answer an API request, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS_SECONDS,
            registry=self.registry,
        )
        self.queue_depth = self._gauge(
            "taskscheduler_queue_depth",
            "Tasks ready to start (in init, their time come), by important_level.",
            "level",
        )
        self.workers = self._gauge(
            "taskscheduler_workers", "Registered workers, by status.", "status"
        )
        self.loop_lag = self._gauge(
            "taskscheduler_loop_lag_seconds",
            "How much later than its interval after the one before the loop's last tick began.",
            "loop",
        )
        self.loop_last_tick = self._gauge(
            "taskscheduler_loop_last_tick_timestamp_seconds",
            "When the loop's last tick began (Unix time): a loop that stopped ticking ages.",
            "loop",
        )
        self.lease_held = self._gauge(
            "taskscheduler_lease_held",
            "1 while this node holds the lease (one node at a time should), else 0.",
            "lease",
        )

    def _gauge(self, name: str, documentation: str, label: str) -> Gauge:
        # one writer at a time for each series: its latest value is the node's
        return Gauge(
            name, documentation, [label], multiprocess_mode="mostrecent", registry=self.registry
        )

    def count_request(self, route: str | None, method: str, status: int, seconds: float) -> None:
        """Count one answer. ``route`` is the matched route's template (None: no route
        matched), never the path; ``method`` outside :data:`METHODS` counts as ``other``."""
        route_label = route or "unmatched"
        method_label = method if method in METHODS else "other"
        status_label = str(status) if 100 <= status <= 599 else "other"
        self.api_requests.labels(route=route_label, method=method_label, status=status_label).inc()
        self.api_latency.labels(route=route_label).observe(seconds)

    def count_moves(self, moves: Iterable[tuple[str, str | None]]) -> None:
        """Count committed moves, each a ``(trigger, outcome)``; called by the task writer
        once their transaction committed (:func:`taskscheduler.tasks.transitions.count_moves`),
        so a rolled-back move never counts."""
        for trigger, outcome in moves:
            self.transitions.labels(trigger=trigger, outcome=outcome or NO_OUTCOME).inc()

    def sample_queue(self, ready_by_level: Mapping[int, int]) -> None:
        """The tasks ready to start, by level; a level absent from the reading has none."""
        for level in LEVELS:
            self.queue_depth.labels(level=str(level)).set(ready_by_level.get(level, 0))

    def sample_workers(self, by_status: Mapping[str, int]) -> None:
        """The registered workers, by status; a status absent from the reading has none."""
        counts = dict.fromkeys((*WORKER_STATUSES, "other"), 0)
        for status, count in by_status.items():
            counts[status if status in WORKER_STATUSES else "other"] += count
        for status, count in counts.items():
            self.workers.labels(status=status).set(count)

    def loop_ticked(self, loop: str, *, started: float, lag: float) -> None:
        """A loop's tick began at ``started`` (Unix time), ``lag`` seconds later than due."""
        self.loop_last_tick.labels(loop=loop).set(started)
        self.loop_lag.labels(loop=loop).set(lag)

    def lease(self, name: str, held: bool) -> None:
        self.lease_held.labels(lease=name).set(1 if held else 0)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type: with a multiprocess directory, the sum
        of every process of the node; without, this process's own registry."""
        if self.multiprocess_dir:
            merged = CollectorRegistry()
            MultiProcessCollector(merged, path=self.multiprocess_dir)
            return generate_latest(merged), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
