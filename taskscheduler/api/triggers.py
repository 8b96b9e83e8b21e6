"""``/v1/triggers``: timed and permanent task definitions (the Producer fires them).

``DELETE`` retires a trigger rather than erasing it; the list leaves retired triggers out
unless ``?include=retired``, and ``GET /v1/triggers/{id}`` shows one with its ``retired_at``.
"""

from __future__ import annotations

from enum import StrEnum

import falcon

from taskscheduler.api import params
from taskscheduler.api.auth import ADMIN, OPERATOR, VIEWER, Guarded
from taskscheduler.api.media import body, reply
from taskscheduler.services import Services
from taskscheduler.triggers.definitions import MAX_NEXT
from taskworker.contract.api import TriggerBody


class TriggerAction(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"


class Include(StrEnum):
    """What ``GET /v1/triggers`` lists beyond the live triggers."""

    RETIRED = "retired"


class Triggers(Guarded):
    ACCESS = {"GET": VIEWER, "POST": OPERATOR}

    def __init__(self, services: Services) -> None:
        self._triggers = services.triggers

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        retired = params.choice(req, "include", Include) is Include.RETIRED
        reply(resp, self._triggers.page(params.limit(req), params.cursor(req), retired=retired))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        created = self._triggers.create(body(req, TriggerBody), role=req.context.role)
        reply(resp, created, 201)


class TriggerEntry(Guarded):
    ACCESS = {"GET": VIEWER, "PUT": OPERATOR, "DELETE": ADMIN}

    def __init__(self, services: Services) -> None:
        self._triggers = services.triggers

    def on_get(self, req: falcon.Request, resp: falcon.Response, trigger_id: int) -> None:
        upcoming = params.integer(req, "next", minimum=0, maximum=MAX_NEXT)
        reply(resp, self._triggers.get(trigger_id, 5 if upcoming is None else upcoming))

    def on_put(self, req: falcon.Request, resp: falcon.Response, trigger_id: int) -> None:
        action = params.require(params.choice(req, "action", TriggerAction), "action")
        reply(resp, self._triggers.set_enabled(trigger_id, action is TriggerAction.RESUME))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, trigger_id: int) -> None:
        self._triggers.retire(trigger_id)
        resp.status = falcon.HTTP_204
