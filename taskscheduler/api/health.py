"""``/health`` for load balancers and ``/metrics`` for Prometheus.

``/health`` is open and touches the database, so a node whose database is gone leaves the
load balancer's pool (503 with ``Retry-After``) instead of failing every request behind it.

``/metrics`` shows every process of the node (:mod:`taskscheduler.metrics`). The queue and
the workers are facts of the database, read when a scrape asks for them (at most every
:data:`~taskscheduler.metrics.SAMPLE_SECONDS` per process), with two cheap grouped counts:
the ready tasks found through the index on ``(state, ready_at)``, as the Scheduler finds
them, and the workers table, one row a worker.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any

import falcon
import msgspec
from sqlalchemy import Engine, Select, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from taskscheduler.api.auth import OPEN, VIEWER, Guarded
from taskscheduler.api.media import reply
from taskscheduler.control.kinds import CONTROL_KINDS
from taskscheduler.db.engine import reading
from taskscheduler.db.models import utcnow
from taskscheduler.db.tables import TASKS, WORKERS
from taskscheduler.metrics import SAMPLE_SECONDS, Metrics
from taskscheduler.services import Services
from taskworker.states import State

log = logging.getLogger(__name__)
_t, _w = TASKS.c, WORKERS.c
WORKERS_BY_STATUS = select(_w.status, func.count()).group_by(_w.status)


def ready_by_level(now: datetime) -> Select[Any]:
    """The tasks the queue would hand out at ``now`` (as :mod:`taskscheduler.queue.database`
    takes them), counted by level."""
    return (
        select(_t.important_level, func.count())
        .where(_t.state == State.INIT, _t.ready_at <= now, _t.kind.not_in(CONTROL_KINDS))
        .group_by(_t.important_level)
    )


class Health(msgspec.Struct):
    status: str
    database: str


class HealthResource(Guarded):
    ACCESS = {"GET": OPEN}

    def __init__(self, services: Services) -> None:
        self._engine = services.engine

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self._engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        reply(resp, Health(status="ok", database="ok"))


class MetricsResource(Guarded):
    ACCESS = {"GET": VIEWER}

    def __init__(self, services: Services) -> None:
        self._metrics = services.metrics
        self._sampler = Sampler(services.engine, services.metrics)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._sampler.refresh()
        resp.data, resp.content_type = self._metrics.render()


class Sampler:
    """Reads the queue and the workers into the metrics, at most every ``every`` seconds:
    a burst of scrapes costs one reading, and no scrape shows an older one."""

    def __init__(self, engine: Engine, metrics: Metrics, every: float = SAMPLE_SECONDS) -> None:
        self._engine = engine
        self._metrics = metrics
        self._every = every
        self._lock = threading.Lock()
        self._read_at = -every

    def refresh(self) -> None:
        with self._lock:  # one reading at a time; the scrapes meanwhile wait for it
            if time.monotonic() - self._read_at < self._every:
                return
            self._read_at = time.monotonic()
            try:
                with reading(self._engine) as conn:
                    ready = conn.execute(ready_by_level(utcnow())).all()
                    workers = conn.execute(WORKERS_BY_STATUS).all()
            except SQLAlchemyError as exc:  # the rest of the node's metrics still answer
                log.warning("metrics: the queue and the workers were not read: %s", exc)
                return
            self._metrics.sample_queue({int(level): int(n) for level, n in ready})
            self._metrics.sample_workers({str(status): int(n) for status, n in workers})


class RequestMetrics:
    """Middleware: counts every answer, refusals included, by route template, method and
    status, each from a fixed set (:meth:`~taskscheduler.metrics.Metrics.count_request`)."""

    def __init__(self, services: Services) -> None:
        self._metrics = services.metrics

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, succeeded: bool
    ) -> None:
        elapsed = time.perf_counter() - req.context.started
        self._metrics.count_request(req.uri_template, req.method, resp.status_code, elapsed)
