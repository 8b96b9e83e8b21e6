"""The scheduler's public REST API (DESIGN §4) as a Falcon WSGI app.

:func:`create_app` takes its dependencies and reads nothing from the environment, so tests
and the standalone mode build it over whatever database they choose; :func:`get_app` is the
gunicorn entry point (``gunicorn 'taskscheduler.api.app:get_app()'``) and the only place the
environment is read.

Middleware order matters: metrics wrap everything (so refusals are counted too), an open
API refuses what browsers send on a web page's behalf before anything else, the body is read
within its limit and held to JSON before authentication (signatures cover the body), a
method the resource does not serve is refused before credentials are looked at, and only
then does a resource run.
"""

from __future__ import annotations

import os
from importlib import metadata
from typing import Any

import falcon

from taskscheduler.api import errors
from taskscheduler.api.auth import Authenticator, BrowserGuard, open_mode
from taskscheduler.api.health import HealthResource, MetricsResource, RequestMetrics
from taskscheduler.api.history import Children, Logs, Transitions
from taskscheduler.api.media import BodyReader
from taskscheduler.api.openapi.document import OpenAPIResource
from taskscheduler.api.reports import Reports
from taskscheduler.api.tasks import TaskList, TaskResource
from taskscheduler.api.topologies import TopologyResource
from taskscheduler.api.triggers import TriggerEntry, Triggers
from taskscheduler.api.workers import Types, WorkerBeat, WorkerDrain, WorkerEntry, Workers
from taskscheduler.services import Services
from taskscheduler.settings import Settings, load
from taskworker.server import WsgiApp

#: Ids in paths run from 1 to 2^63 - 1, as the database's do: any other names nothing (404).
_TASK = "/v1/tasks/{task_id:int(min=1,max=9223372036854775807)}"
_TRIGGER = "/v1/triggers/{trigger_id:int(min=1,max=9223372036854775807)}"


def create_app(settings: Settings, services: Services) -> WsgiApp:
    """The API over ``services``; raises ``SettingsError`` if it would be open to the network."""
    is_open = open_mode(settings)
    middleware: list[Any] = [
        RequestMetrics(services),
        *([BrowserGuard()] if is_open else []),
        BodyReader(settings.max_body_bytes),
        Authenticator(settings, is_open=is_open),
    ]
    app = falcon.App(middleware=middleware)
    errors.install(app)
    app.add_route("/v1/task/{task_type}", TaskResource(services))
    app.add_route("/v1/tasks", TaskList(services))
    app.add_route(f"{_TASK}/transitions", Transitions(services))
    app.add_route(f"{_TASK}/logs", Logs(services))
    app.add_route(f"{_TASK}/children", Children(services))
    app.add_route("/v1/topology", TopologyResource(services))
    app.add_route("/v1/triggers", Triggers(services))
    app.add_route(_TRIGGER, TriggerEntry(services))
    app.add_route("/v1/workers", Workers(services))
    app.add_route("/v1/workers/{name}", WorkerEntry(services))
    app.add_route("/v1/workers/{name}/heartbeat", WorkerBeat(services))
    app.add_route("/v1/reports", Reports(services))
    app.add_route("/v1/workers/{name}/drain", WorkerDrain(services))
    app.add_route("/v1/types", Types(services))
    app.add_route("/health", HealthResource(services))
    app.add_route("/metrics", MetricsResource(services))
    app.add_route("/openapi.json", OpenAPIResource(_version(), is_open=is_open))
    return app


def get_app() -> WsgiApp:
    """gunicorn's entry: settings from ``TASK_*`` and the TOML file, metrics per gunicorn."""
    settings = load()
    services = Services.build(
        settings, multiprocess_dir=os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
    )
    return create_app(settings, services)


def _version() -> str:
    try:
        return metadata.version("taskscheduler")
    except metadata.PackageNotFoundError:
        return "0+unknown"
