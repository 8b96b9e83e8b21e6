"""``taskworker serve``: one worker node under gunicorn.

gunicorn runs ONE gthread worker process: the executor's state (the tasks, their step
threads, the pause and cancel flags) lives in memory, and the HTTP thread that receives a
``pause`` must reach the step thread that checks it, so a second process would split the
worker in two. Its threads (``capacity`` plus :data:`SPARE_THREADS`) serve requests while
steps run in threads of their own; the spare threads keep status queries and commands
answered when every slot runs a step.

The node is built in the worker process (not preloaded in the arbiter), started by the
``post_worker_init`` hook and stopped by ``worker_exit``, which gunicorn calls after SIGTERM
once the worker stopped accepting connections. ``graceful_timeout`` covers the grace period
and the report flush, so the arbiter does not kill the worker while it stops.
"""

from __future__ import annotations

import logging
import math
import signal
import sys
from typing import Any

import click
from gunicorn.app.base import BaseApplication

from taskworker.config import SettingsError
from taskworker.node import WorkerNode
from taskworker.settings import WorkerSettings, load
from taskworker.startup import freeze_startup

#: Request threads beyond the capacity, for queries and commands while every slot is busy.
SPARE_THREADS = 4
#: Beyond the grace period and the report flush, time for deregistration and the exit.
STOP_MARGIN_SECONDS = 10


class WorkerApplication(BaseApplication):
    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.node: WorkerNode | None = None
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        stop_budget = s.worker_grace_seconds + s.report_flush_seconds + STOP_MARGIN_SECONDS
        options: dict[str, Any] = {
            "bind": [s.worker_bind],
            "workers": 1,
            "worker_class": "gthread",
            "threads": s.worker_capacity + SPARE_THREADS,
            "graceful_timeout": math.ceil(stop_budget),
            "timeout": math.ceil(max(30.0, s.prepare_timeout_seconds + 10)),
            "keepalive": 5,
            "preload_app": False,
            "proc_name": f"taskworker-{s.worker_name}",
            "loglevel": "info",
            "post_worker_init": _started,
            "worker_exit": _stopping,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        self.node = WorkerNode(self.settings)
        freeze_startup()
        return self.node.app


def _started(worker: Any) -> None:
    """Start the node; on SIGTERM refuse creates at once, then let gunicorn stop."""
    node = worker.app.node
    node.start()
    stop_serving = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: Any) -> None:
        node.executor.drain()
        if callable(stop_serving):
            stop_serving(signum, frame)

    signal.signal(signal.SIGTERM, on_term)


def _stopping(arbiter: Any, worker: Any) -> None:
    node = worker.app.node
    if node is not None:
        node.stop()


@click.group()
def main() -> None:
    """TaskWorker: hosts task plugins behind the uniform task contract."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


@main.command()
@click.option("--bind", help="HOST:PORT to listen on (TASK_WORKER_BIND).")
@click.option(
    "--scheduler",
    help="The scheduler's URL (TASK_SCHEDULER_URL; default "
    f"{WorkerSettings.model_fields['scheduler_url'].default}).",
)
@click.option("--capacity", type=int, help="Steps run at once (TASK_WORKER_CAPACITY).")
@click.option("--name", help="The registered name (TASK_WORKER_NAME).")
@click.option("--advertise", help="The URL the scheduler calls (TASK_WORKER_ADVERTISE_URL).")
@click.option(
    "--plugin-dir",
    "plugin_dirs",
    multiple=True,
    help="A directory of extra plugins; repeatable (TASK_PLUGIN_DIRS, a JSON list).",
)
def serve(
    *,
    bind: str | None,
    scheduler: str | None,
    capacity: int | None,
    name: str | None,
    advertise: str | None,
    plugin_dirs: tuple[str, ...],
) -> None:
    """Serve the task contract, register with the scheduler, heartbeat."""
    try:
        settings = load(
            worker_bind=bind,
            scheduler_url=scheduler,
            worker_capacity=capacity,
            worker_name=name,
            worker_advertise_url=advertise,
            plugin_dirs=list(plugin_dirs) or None,
        )
    except SettingsError as exc:
        click.echo(f"taskworker: {exc}", err=True)
        sys.exit(2)
    WorkerApplication(settings).run()
