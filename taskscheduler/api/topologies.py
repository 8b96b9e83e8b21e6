"""``POST /v1/topology``: a DAG of tasks under one control task, stored whole or not at all."""

from __future__ import annotations

import falcon

from taskscheduler.api.auth import OPERATOR, Guarded
from taskscheduler.api.media import body, reply
from taskscheduler.services import Services
from taskworker.contract.api import TopologyBody


class TopologyResource(Guarded):
    ACCESS = {"POST": OPERATOR}

    def __init__(self, services: Services) -> None:
        self._tasks = services.tasks

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        created, new = self._tasks.create_topology(
            body(req, TopologyBody), actor=req.context.actor, role=req.context.role
        )
        reply(resp, created, 201 if new else 200)
