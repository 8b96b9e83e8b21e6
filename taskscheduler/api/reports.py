"""``POST /v1/reports``: many workers' reports in one request (see
:mod:`taskscheduler.tasks.reports` for how they are applied)."""

from __future__ import annotations

import falcon

from taskscheduler.api.auth import WORKER_OR_ADMIN, Guarded
from taskscheduler.api.media import body, reply
from taskscheduler.services import Services
from taskscheduler.tasks.reports import apply_reports
from taskworker.contract.worker import ReportBatch, ReportResults
from taskworker.states import Trigger


class Reports(Guarded):
    ACCESS = {"POST": WORKER_OR_ADMIN}

    def __init__(self, services: Services) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        batch = body(req, ReportBatch)
        results, moved = apply_reports(self._services.engine, batch.reports, req.context.actor)
        if Trigger.RETRY in moved:
            # a task back in line (an end, which frees a slot, is announced on its own)
            self._services.wakeup.notify()
        reply(resp, ReportResults(results))
