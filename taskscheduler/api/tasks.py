"""``/v1/task/{task_type}`` (the uniform task endpoint) and ``/v1/tasks`` (the list).

Thin by design: parse the query and body, call the task services, encode the answer.
"""

from __future__ import annotations

from typing import Any

import falcon

from taskscheduler.api import params
from taskscheduler.api.auth import OPERATOR, VIEWER, Access, Guarded
from taskscheduler.api.media import body, raw_body, reply
from taskscheduler.services import Services
from taskscheduler.tasks.read import TaskFilter
from taskscheduler.tasks.views import CreatedBatch
from taskworker.contract.api import Action, CreateBatch, CreateBody, Query
from taskworker.errors import InvalidInput
from taskworker.states import Outcome, State

#: Reports a worker makes about a task it runs (accepted signed, besides operator tokens).
WORKER_REPORTS = frozenset(
    {Action.PREPARE, Action.RUNNING, Action.CLEAN, Action.NOTIFY, Action.PROGRESS, Action.HEARTBEAT}
)
#: The longest a query may wait for its task to finish (``wait=``); it holds an API thread.
MAX_WAIT_SECONDS = 60
#: Reports an outside system may make with the task's notify token.
NOTIFY_TOKEN_ACTIONS = frozenset({Action.NOTIFY, Action.PROGRESS, Action.HEARTBEAT})


class TaskResource(Guarded):
    def __init__(self, services: Services) -> None:
        self._tasks = services.tasks
        self._actions = services.actions
        self._queries = services.queries

    def access(self, req: falcon.Request, params_: dict[str, Any]) -> Access:
        if req.method == "GET":
            return VIEWER
        if req.method != "PUT":
            return OPERATOR
        action = req.get_param("action")
        task_id = req.get_param("task_id")
        notify_task = int(task_id) if task_id and task_id.isdigit() else None
        if action in NOTIFY_TOKEN_ACTIONS:
            return Access("operator", worker=True, notify_task=notify_task)
        if action in WORKER_REPORTS:
            return Access("operator", worker=True)
        return OPERATOR

    def on_post(self, req: falcon.Request, resp: falcon.Response, task_type: str) -> None:
        created, new = self._tasks.create(
            task_type, body(req, CreateBody), actor=req.context.actor, role=req.context.role
        )
        reply(resp, created, 201 if new else 200)

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_type: str) -> None:
        task_id = params.identifier(req, "task_id")
        name = params.text(req, "task_name")
        what = params.choice(req, "action", Query)
        wait = params.seconds(req, "wait", maximum=MAX_WAIT_SECONDS)
        if task_id is not None:
            if name is not None:
                raise InvalidInput("task_name", "give either task_id or task_name, not both")
            reply(resp, self._queries.query(task_type, task_id, what, wait=wait))
            return
        if wait is not None:
            raise InvalidInput("wait", "needs task_id")
        if name is None:
            raise InvalidInput("task_id", "is required (or task_name to search by name)")
        if what is not None:
            raise InvalidInput("action", "needs task_id")
        where = TaskFilter(task_type=params.task_type(task_type), name=name)
        page = self._queries.tasks(where, limit=params.limit(req), cursor=params.cursor(req))
        reply(resp, page)

    def on_put(self, req: falcon.Request, resp: falcon.Response, task_type: str) -> None:
        task_id = params.require(params.identifier(req, "task_id"), "task_id")
        action = params.require(params.choice(req, "action", Action), "action")
        task = self._actions.act(
            task_type,
            task_id,
            action,
            raw_body(req),
            actor=req.context.actor,
            role=req.context.role,
            reason=params.text(req, "reason"),
            attempt=params.integer(req, "attempt"),
        )
        # a revert answers with the task it created to undo this one
        reply(resp, task, 201 if action is Action.REVERT else 200)


class TaskList(Guarded):
    ACCESS = {"GET": VIEWER, "POST": OPERATOR}

    def __init__(self, services: Services) -> None:
        self._queries = services.queries
        self._tasks = services.tasks

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        batch = body(req, CreateBatch)
        created, new = self._tasks.create_many(
            batch.tasks, actor=req.context.actor, role=req.context.role
        )
        reply(resp, CreatedBatch(created), 201 if new else 200)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        state = params.choice(req, "state", State)
        outcome = params.choice(req, "outcome", Outcome)
        where = TaskFilter(
            task_type=params.text(req, "type"),
            state=state.value if state else None,
            outcome=outcome.value if outcome else None,
            name=params.text(req, "name"),
            parent=params.identifier(req, "parent"),
            since=params.timestamp(req, "since"),
        )
        page = self._queries.tasks(where, limit=params.limit(req), cursor=params.cursor(req))
        reply(resp, page)
