"""One scheduler node at run time: the API under gunicorn, and the loops in a process of
their own.

The loops run in a separate process (started with ``spawn``, so it shares no sockets,
pools or threads with gunicorn's forked workers) that exits when its parent does. The API
may run several gunicorn processes; the loops need one per node, and several nodes are safe
together because every move the loops make is version-checked.

Every process of the node writes its metrics to the directory named in
``PROMETHEUS_MULTIPROC_DIR`` (made by :mod:`taskscheduler.cli` before this module is
imported), and the API process answering ``/metrics`` merges them all.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from typing import Any

from gunicorn.app.base import BaseApplication
from prometheus_client import multiprocess

from taskscheduler.api.app import create_app
from taskscheduler.loops.assembly import assemble
from taskscheduler.loops.base import LoopRunner
from taskscheduler.services import Services
from taskscheduler.settings import Settings
from taskworker.startup import freeze_startup

log = logging.getLogger(__name__)
#: How often an idle loop looks again; a busy one goes on at once.
LOOP_INTERVAL_SECONDS = 0.2
#: How often an idle Producer looks for due triggers (cron times fall on whole seconds).
PRODUCER_INTERVAL_SECONDS = 0.1
#: How often the idle dispatch loop looks for new tasks when no Redis channel wakes it.
DATABASE_IDLE_SECONDS = 0.02


def run_loops(settings: Settings, parent_pid: int) -> None:
    """The loops process: runs until its parent (the node) is gone."""
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    services = Services.build(settings, reach_workers=True)
    loops = assemble(services)
    stop, woken = threading.Event(), threading.Event()

    def orphaned() -> None:
        while not stop.wait(1.0):
            if os.getppid() != parent_pid:
                log.warning("the node process is gone: the loops stop")
                stop.set()
                woken.set()

    threading.Thread(target=orphaned, daemon=True).start()
    # The dispatch loops start tasks as soon as they are announced; the housekeeping loops
    # (timeouts, retries, callbacks, log files) and the Producer keep their own pace in
    # threads of their own.
    threading.Thread(target=services.wakeup.listen, args=(woken, stop), daemon=True).start()
    idle = LOOP_INTERVAL_SECONDS if settings.redis_url else DATABASE_IDLE_SECONDS
    keepers = [
        threading.Thread(
            target=LoopRunner(loops, interval, stop, metrics=services.metrics).run, name=name
        )
        for name, loops, interval in (
            ("housekeeping", loops.housekeeping, LOOP_INTERVAL_SECONDS),
            ("producer", loops.timed, PRODUCER_INTERVAL_SECONDS),
        )
    ]
    freeze_startup()
    for keeper in keepers:
        keeper.start()
    LoopRunner(loops.dispatch, idle, stop, woken, metrics=services.metrics).run()
    for keeper in keepers:
        keeper.join()


def start_loops(settings: Settings) -> multiprocessing.process.BaseProcess:
    process = multiprocessing.get_context("spawn").Process(
        target=run_loops, args=(settings, os.getpid()), name="taskscheduler-loops", daemon=True
    )
    process.start()
    return process


class ApiApplication(BaseApplication):
    """gunicorn (gthread) serving the API; the app is built in each worker, after the fork."""

    def __init__(self, settings: Settings, *, workers: int, threads: int) -> None:
        self.settings = settings
        self.workers = workers
        self.threads = threads
        super().__init__()

    def load_config(self) -> None:
        options: dict[str, Any] = {
            "bind": [self.settings.bind],
            "workers": self.workers,
            "worker_class": "gthread",
            "threads": self.threads,
            "keepalive": 5,
            "preload_app": False,
            "proc_name": f"taskscheduler-{self.settings.node_name}",
            "loglevel": self.settings.log_level,
            "child_exit": _child_exit,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        services = Services.build(
            self.settings,
            reach_workers=True,
            multiprocess_dir=os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None,
        )
        app = create_app(self.settings, services)
        freeze_startup()
        return app


def _child_exit(server: Any, worker: Any) -> None:
    """gunicorn's hook when an API process exits: what it counted stays in the node's sums,
    and its live gauges, were there any, leave them (prometheus-client's bookkeeping)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        multiprocess.mark_process_dead(worker.pid, directory)
