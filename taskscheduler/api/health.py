"""``/health`` for load balancers and ``/metrics`` for Prometheus.

``/health`` is open and touches the database, so a node whose database is gone leaves the
load balancer's pool (503 with ``Retry-After``) instead of failing every request behind it.
"""

from __future__ import annotations

import time

import falcon
import msgspec
from sqlalchemy import text

from taskscheduler.api.auth import OPEN, VIEWER, Guarded
from taskscheduler.api.media import reply
from taskscheduler.services import Services


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

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.data, resp.content_type = self._metrics.render()


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
