"""One worker node: its plugins, executor, reporter and registration, started and stopped
together.

Everything lives in one process because the executor's state (which task runs where, the
pause and cancel flags its steps listen to) is in memory: the HTTP threads that receive a
``pause`` must be in the process whose step thread checks it. ``taskworker serve`` therefore
runs gunicorn with a single worker process; its threads serve requests concurrently.

Stopping follows DESIGN §4: take no new work (503), let running steps end or reach a
checkpoint within the grace period, deliver every report, deregister.
"""

from __future__ import annotations

import logging

from taskworker.client import SignedClient
from taskworker.discovery import discover
from taskworker.executor import Executor
from taskworker.registration import Registration, registration
from taskworker.reporter import Reporter
from taskworker.server import WsgiApp, create_app
from taskworker.settings import WorkerSettings

log = logging.getLogger(__name__)


class WorkerNode:
    def __init__(self, settings: WorkerSettings) -> None:
        assert settings.worker_secret, "WorkerSettings.check() requires the secret"
        self.settings = settings
        found = discover(settings.plugin_dirs)
        self.task_types = sorted(found.types)
        client = SignedClient(
            settings.scheduler_url, settings.worker_secret, name=settings.worker_name
        )
        self.reporter = Reporter(client)
        self.executor = Executor(
            found.types,
            self.reporter,
            name=settings.worker_name,
            capacity=settings.worker_capacity,
            grace_seconds=settings.worker_grace_seconds,
            prepare_timeout=settings.prepare_timeout_seconds,
            scheduler_url=settings.scheduler_url,
        )
        entry = registration(
            settings.worker_name, settings.advertise_url, settings.worker_capacity, found.types
        )
        self.registration = Registration(
            client, entry, period=settings.worker_heartbeat_seconds, on_beat=self.executor.beat
        )
        self.app: WsgiApp = create_app(self.executor, settings)

    def start(self) -> None:
        self.reporter.start()
        self.registration.start()
        log.info(
            "worker %s serving %s with capacity %d",
            self.settings.worker_name,
            ", ".join(self.task_types),
            self.settings.worker_capacity,
        )

    def stop(self) -> None:
        """Graceful stop; every report is delivered or logged as undelivered."""
        log.info(
            "stopping: no new tasks, %.0f s for running steps", self.settings.worker_grace_seconds
        )
        self.executor.shutdown()
        self.reporter.close(self.settings.report_flush_seconds)
        self.registration.stop()
        log.info("stopped")
