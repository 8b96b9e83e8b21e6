"""``/v1/workers`` (register, heartbeat, deregister, list, drain) and ``/v1/types``.

Workers register and heartbeat with signed requests; an admin may do it by token (a service
in another language that speaks the contract, without the signing code).
"""

from __future__ import annotations

import falcon

from taskscheduler.api.auth import ADMIN, VIEWER, WORKER_OR_ADMIN, Guarded
from taskscheduler.api.media import body, reply
from taskscheduler.services import Services
from taskworker.contract.worker import WorkerHeartbeat, WorkerRegistration


class Workers(Guarded):
    ACCESS = {"GET": VIEWER, "POST": WORKER_OR_ADMIN}

    def __init__(self, services: Services) -> None:
        self._registry = services.registry

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        reply(resp, self._registry.workers())

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        reply(resp, self._registry.register(body(req, WorkerRegistration)), 201)


class WorkerEntry(Guarded):
    ACCESS = {"DELETE": WORKER_OR_ADMIN}

    def __init__(self, services: Services) -> None:
        self._registry = services.registry

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        self._registry.deregister(name)
        resp.status = falcon.HTTP_204


class WorkerBeat(Guarded):
    ACCESS = {"PUT": WORKER_OR_ADMIN}

    def __init__(self, services: Services) -> None:
        self._registry = services.registry

    def on_put(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        self._registry.heartbeat(name, body(req, WorkerHeartbeat))
        resp.status = falcon.HTTP_204


class WorkerDrain(Guarded):
    ACCESS = {"PUT": ADMIN}

    def __init__(self, services: Services) -> None:
        self._registry = services.registry

    def on_put(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        reply(resp, self._registry.drain(name))


class Types(Guarded):
    ACCESS = {"GET": VIEWER}

    def __init__(self, services: Services) -> None:
        self._registry = services.registry

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        reply(resp, self._registry.types())
