"""``taskscheduler serve`` (one node) and ``taskscheduler standalone`` (node and worker).

Every setting that can refuse a start is checked here, before the loops start or gunicorn
listens: a bad value, a missing or short ``TASK_WORKER_SECRET`` (``serve``), an API open to
the network (no tokens, a bind off loopback), an outdated schema. Each is one line naming
what to fix and exit code 2, never a traceback from a process already serving.

A node's processes share their metrics through a directory of its own
(:mod:`taskscheduler.metrics`), named in ``PROMETHEUS_MULTIPROC_DIR`` before any of them
imports prometheus-client: so this module imports :mod:`taskscheduler.node`, which does,
only once the directory is made.
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from typing import Any

import click

from taskscheduler.api.auth import open_mode
from taskscheduler.db.engine import make_engine
from taskscheduler.db.schema import check_schema
from taskscheduler.errors import SchemaOutdated
from taskscheduler.logdumper.config import load_rules
from taskscheduler.settings import Settings, load
from taskworker.config import SettingsError

log = logging.getLogger("taskscheduler")
#: How long the node waits for its loops process to end once told to.
LOOPS_STOP_SECONDS = 10.0


def _settings(*, needs_secret: bool, **overrides: Any) -> Settings:
    try:
        settings = load(**overrides)
        if needs_secret:
            settings.require_worker_secret()
        open_mode(settings)  # no tokens and not on loopback: refused before anything listens
        if settings.logdumper_rules:
            load_rules(settings.logdumper_rules)  # refused here, not later in the loops
    except SettingsError as exc:
        click.echo(f"taskscheduler: {exc}", err=True)
        sys.exit(2)
    engine = make_engine(settings.db_url)
    try:
        check_schema(engine)
    except SchemaOutdated as exc:
        click.echo(f"taskscheduler: {exc.message}", err=True)
        sys.exit(2)
    finally:
        engine.dispose()
    return settings


def _metrics_directory() -> str:
    """A fresh directory for the metrics of this node's processes, removed when it exits
    (a directory left by another run would add its counts to ours)."""
    if "prometheus_client" in sys.modules:  # it chose where values live when imported
        raise RuntimeError("prometheus_client was imported before the metrics directory was set")
    directory = tempfile.mkdtemp(prefix="taskscheduler-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory


def _run(settings: Settings, workers: int, threads: int) -> None:
    _metrics_directory()  # before the import below: the processes inherit it
    from taskscheduler.node import ApiApplication, start_loops

    loops = start_loops(settings)
    atexit.register(_stop_loops, loops)  # runs before the directory goes: registered after
    ApiApplication(settings, workers=workers, threads=threads).run()


def _stop_loops(loops: Any) -> None:
    loops.terminate()
    loops.join(LOOPS_STOP_SECONDS)


@click.group()
def main() -> None:
    """TaskScheduler: the authority over every task."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


bind_option = click.option(
    "--bind",
    help=f"HOST:PORT for the API (TASK_BIND; default {Settings.model_fields['bind'].default}).",
)


@main.command()
@bind_option
@click.option("--workers", default=2, show_default=True, help="API processes.")
@click.option("--threads", default=8, show_default=True, help="Threads per API process.")
def serve(bind: str | None, workers: int, threads: int) -> None:
    """One scheduler node: the API and the loops, on the configured database."""
    _run(_settings(needs_secret=True, bind=bind), workers, threads)


@main.command()
@bind_option
def standalone(bind: str | None) -> None:
    """A node, its loops and one worker with the shipped plugins, on the embedded defaults."""
    settings = _settings(needs_secret=False, bind=bind)
    if not settings.worker_secret:  # one machine, one run: a fresh secret will do
        settings = settings.model_copy(update={"worker_secret": secrets.token_hex(16)})
    host, _, port = settings.bind.rpartition(":")
    scheduler_url = f"http://{'127.0.0.1' if host in ('', '0.0.0.0') else host}:{port}"
    worker_bind = f"127.0.0.1:{_free_port()}"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "taskworker",
            "serve",
            "--bind",
            worker_bind,
            "--scheduler",
            scheduler_url,
            "--name",
            f"{settings.node_name}-worker",
        ],
        env={**os.environ, "TASK_WORKER_SECRET": str(settings.worker_secret)},
    )
    atexit.register(_stop, worker)
    log.info("standalone: API on %s, worker on %s", settings.bind, worker_bind)
    _run(settings, workers=1, threads=8)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
