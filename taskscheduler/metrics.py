"""Prometheus metrics shared by the API and the loops of one scheduler node.

Every :class:`Metrics` has its own registry, so two apps in one process (tests, the
standalone mode) never collide on metric names and nothing lives in a global.

Under gunicorn each worker process counts on its own; with ``PROMETHEUS_MULTIPROC_DIR`` set
(prometheus-client reads it when imported) the values go to memory-mapped files in that
directory and :meth:`Metrics.render` sums every process's files, so a scrape sees the node,
not whichever process answered. The directory must be emptied before gunicorn starts.
"""

from __future__ import annotations

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
#: The methods counted by name; any other is counted as ``other``. A label's values must be
#: a fixed set: each new value is a new series held in memory and in every scrape, so a
#: client inventing method names (or paths, see :meth:`Metrics.count_request`) would grow
#: both without end.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """The node's metrics; the loops set the gauges, the API and lifecycle count."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        self.transitions = Counter(
            "taskscheduler_transitions",
            "Task state transitions written, by trigger.",
            ["trigger"],
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
        # "max" across processes: each loop process sees the same shared store.
        self.queue_depth = Gauge(
            "taskscheduler_queue_depth",
            "Tasks waiting in the queue, by important_level.",
            ["level"],
            multiprocess_mode="max",
            registry=self.registry,
        )
        self.workers = Gauge(
            "taskscheduler_workers",
            "Registered workers, by status.",
            ["status"],
            multiprocess_mode="max",
            registry=self.registry,
        )

    def count_request(self, route: str | None, method: str, status: int, seconds: float) -> None:
        """Count one answer. ``route`` is the matched route's template (None: no route
        matched), never the path; ``method`` outside :data:`METHODS` counts as ``other``."""
        route_label = route or "unmatched"
        method_label = method if method in METHODS else "other"
        status_label = str(status) if 100 <= status <= 599 else "other"
        self.api_requests.labels(route=route_label, method=method_label, status=status_label).inc()
        self.api_latency.labels(route=route_label).observe(seconds)

    def count_transitions(self, triggers: list[str]) -> None:
        """Count triggers once their transaction committed (a rolled-back move never counts)."""
        for trigger in triggers:
            self.transitions.labels(trigger=trigger).inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        if self.multiprocess_dir:
            merged = CollectorRegistry()
            MultiProcessCollector(merged, path=self.multiprocess_dir)
            return generate_latest(merged), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
