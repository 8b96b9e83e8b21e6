"""``/v1/tasks/{id}/transitions``, ``/logs`` and ``/children``: what happened to a task.

Logs are followed by polling with ``after=<next_after>``; workers append lines in batches
with ``POST`` (signed), one commit per batch.
"""

from __future__ import annotations

import falcon

from taskscheduler.api import params
from taskscheduler.api.auth import VIEWER, WORKER_OR_ADMIN, Guarded
from taskscheduler.api.media import body, reply
from taskscheduler.services import Services
from taskscheduler.tasks.read import MAX_LIMIT
from taskworker.contract.api import LogBatch


class Transitions(Guarded):
    ACCESS = {"GET": VIEWER}

    def __init__(self, services: Services) -> None:
        self._queries = services.queries

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: int) -> None:
        reply(resp, self._queries.transitions(task_id))


class Logs(Guarded):
    ACCESS = {"GET": VIEWER, "POST": WORKER_OR_ADMIN}

    def __init__(self, services: Services) -> None:
        self._queries = services.queries

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: int) -> None:
        after = params.integer(req, "after") or 0
        found = params.integer(req, "limit", minimum=1, maximum=MAX_LIMIT)
        page = self._queries.logs(task_id, after=after, limit=found or MAX_LIMIT)
        reply(resp, page)

    def on_post(self, req: falcon.Request, resp: falcon.Response, task_id: int) -> None:
        reply(resp, self._queries.append_logs(task_id, body(req, LogBatch)), 201)


class Children(Guarded):
    ACCESS = {"GET": VIEWER}

    def __init__(self, services: Services) -> None:
        self._queries = services.queries

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: int) -> None:
        page = self._queries.children(task_id, limit=params.limit(req), cursor=params.cursor(req))
        reply(resp, page)
