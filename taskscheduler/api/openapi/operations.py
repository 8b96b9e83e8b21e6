"""The operations the API serves, as data: what ``/openapi.json`` is built from.

One row per route and method: who may call it, its parameters, its body and its answers.
The structs named here are the ones the resources decode and encode, so their schemas cannot
drift; the rows themselves are kept true by a test that compares them with falcon's router.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import falcon
import msgspec

from taskscheduler.api.health import Health
from taskscheduler.api.params import MAX_TEXT_LENGTH
from taskscheduler.tasks.read import MAX_LIMIT
from taskscheduler.tasks.views import (
    Appended,
    CreatedBatch,
    CreatedView,
    HeartbeatView,
    LogPage,
    SummaryView,
    TaskPage,
    TopologyView,
)
from taskscheduler.triggers.views import TriggerPage, TriggerView
from taskscheduler.workers.views import TypeView, WorkerView
from taskworker.contract.api import (
    Action,
    ChangeBody,
    CreateBatch,
    CreateBody,
    LogBatch,
    NotifyBody,
    Progress,
    ProgressBody,
    Query,
    StatusView,
    TaskView,
    TopologyBody,
    TransitionView,
    TriggerBody,
)
from taskworker.contract.fields import MAX_ID, AwareTime, TaskType
from taskworker.contract.worker import (
    ReportBatch,
    ReportResults,
    WorkerHeartbeat,
    WorkerRegistration,
)
from taskworker.states import Outcome, State

ERRORS = {
    400: "Bad input; `field` names it",
    401: "Missing or unknown credentials",
    403: "The credentials' role may not do this (or, on an open node, a browser's request "
    "for another site)",
    404: "Unknown task, type, trigger or worker (an id past 2^63 - 1 names none)",
    409: "The state table refuses the action, or the task changed meanwhile",
    413: "The body exceeds max_body_bytes",
    415: "The body is not application/json",
    503: "A backing service is down; retry after `Retry-After` seconds",
}
AUTH_ERRORS = (401, 403)
#: What gunicorn answers (in HTML) to a request line past its limit (4094 bytes), before the
#: API sees it: query parameters are bounded in characters, and a character may take 12.
URI_TOO_LONG = "The request line is longer than the HTTP server takes (HTML, not JSON)"


@dataclass(frozen=True)
class Param:
    name: str
    schema: dict[str, Any]
    description: str
    where: str = "query"
    required: bool = False


@dataclass(frozen=True)
class Op:
    path: str
    method: str
    summary: str
    #: viewer, operator, admin or open; "+worker": signed worker requests too; "+notify":
    #: the task's notify token too.
    access: str
    ok: int = 200
    #: A struct, a list of structs for a oneOf, None for no content, or a raw schema.
    answer: Any = None
    body: Any = None
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = (400, 404)
    media: str = falcon.MEDIA_JSON
    extra: dict[str, Any] = field(default_factory=dict)


def _path(name: str, schema: dict[str, Any] | None = None) -> Param:
    return Param(name, schema or {"type": "string"}, f"the {name}", "path", True)


#: An id (a larger one is 404); a position in a list (a larger one is 400).
_INT = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
_TEXT = {"type": "string", "maxLength": MAX_TEXT_LENGTH}
_TYPE = _path("task_type", {"type": "string", **msgspec.json.schema(TaskType)})
_ID = _path("task_id", _INT)
_LIMIT = Param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, "page size")
_CURSOR = Param("cursor", _INT, "the previous page's next_cursor")
_TASK_ID = Param("task_id", _INT, "the task", required=True)
_TRIGGER = _path("trigger_id", _INT)
#: A time as in bodies: RFC 3339 with its zone, in the years every time is held to.
_TIME = {"type": "string", **msgspec.json.schema(AwareTime)}


def _enum(values: Any) -> dict[str, Any]:
    return {"type": "string", "enum": [v.value for v in values]}


OPERATIONS: tuple[Op, ...] = (
    Op(
        "/v1/task/{task_type}",
        "POST",
        "Create a task (200 with the existing one for a repeated idempotency_key)",
        "operator",
        201,
        CreatedView,
        CreateBody,
        (_TYPE,),
        (400, 404, 409, 413),
        extra={"200": CreatedView},
    ),
    Op(
        "/v1/task/{task_type}",
        "GET",
        "Query a task by task_id (whole, or one aspect with "
        "action), or tasks by task_name, newest first",
        "viewer",
        answer=[TaskView, TaskPage, StatusView, Progress, SummaryView, HeartbeatView],
        params=(
            _TYPE,
            Param("task_id", _INT, "the task"),
            Param("task_name", _TEXT, "search by name instead"),
            Param("action", _enum(Query), "one aspect of the task"),
            Param(
                "wait",
                {"type": "number", "minimum": 0, "maximum": 60},
                "with task_id: answer once the task has finished, or after this many seconds",
            ),
            _LIMIT,
            _CURSOR,
        ),
    ),
    Op(
        "/v1/task/{task_type}",
        "PUT",
        "Act on a task; the state table decides (revert: 201 with the new task that undoes it)",
        "operator+worker+notify",
        answer=TaskView,
        body=[ChangeBody, ProgressBody, NotifyBody, {"type": "object"}],
        params=(
            _TYPE,
            _TASK_ID,
            Param("action", _enum(Action), "the action", required=True),
            Param("reason", _TEXT, "kept in the transition record"),
            Param(
                "attempt",
                {"type": "integer", "minimum": 0, "maximum": MAX_ID},
                "a worker's attempt; stale ones get 409",
            ),
            Param("token", _TEXT, "the task's notify token (notify, progress, heartbeat)"),
        ),
        errors=(400, 404, 409, 413),
        extra={"201": TaskView},
    ),
    Op(
        "/v1/tasks",
        "GET",
        "List tasks, newest first",
        "viewer",
        answer=TaskPage,
        params=(
            Param("type", _TEXT, "task type"),
            Param("state", _enum(State), "state"),
            Param("outcome", _enum(Outcome), "outcome"),
            Param("name", _TEXT, "name"),
            Param("parent", _INT, "parent task id"),
            Param("since", _TIME, "created at or after"),
            _LIMIT,
            _CURSOR,
        ),
        errors=(400, 404),
    ),
    Op(
        "/v1/tasks",
        "POST",
        "Create many tasks in one transaction, all or none (at most 1000)",
        "operator",
        201,
        CreatedBatch,
        CreateBatch,
        (),
        (400, 409, 413),
        extra={"200": CreatedBatch},
    ),
    Op(
        "/v1/tasks/{task_id}/transitions",
        "GET",
        "The task's transition record",
        "viewer",
        answer=list[TransitionView],
        params=(_ID,),
    ),
    Op(
        "/v1/tasks/{task_id}/logs",
        "GET",
        "Log lines after `after`, oldest first",
        "viewer",
        answer=LogPage,
        params=(
            _ID,
            Param("after", {"type": "integer", "minimum": 0, "maximum": MAX_ID}, "last id seen"),
            _LIMIT,
        ),
    ),
    Op(
        "/v1/tasks/{task_id}/logs",
        "POST",
        "Append a batch of log lines",
        "admin+worker",
        201,
        Appended,
        LogBatch,
        (_ID,),
        (400, 404, 413),
    ),
    Op(
        "/v1/tasks/{task_id}/children",
        "GET",
        "Fan-out children and topology members, oldest first",
        "viewer",
        answer=TaskPage,
        params=(_ID, _LIMIT, _CURSOR),
    ),
    Op(
        "/v1/topology",
        "POST",
        "Create a topology (a DAG of tasks under a control task), all or nothing",
        "operator",
        201,
        TopologyView,
        TopologyBody,
        (),
        (400, 409, 413),
        extra={"200": TopologyView},
    ),
    Op(
        "/v1/triggers",
        "GET",
        "Timed and permanent task definitions, oldest first",
        "viewer",
        answer=TriggerPage,
        params=(
            _LIMIT,
            _CURSOR,
            Param("include", {"enum": ["retired"]}, "retired triggers too (left out otherwise)"),
        ),
        errors=(400,),
    ),
    Op(
        "/v1/triggers",
        "POST",
        "Create a timed (cron, interval, list of times) or permanent trigger",
        "operator",
        201,
        TriggerView,
        TriggerBody,
        (),
        (400, 409, 413),
    ),
    Op(
        "/v1/triggers/{trigger_id}",
        "GET",
        "A trigger with its next fire times",
        "viewer",
        answer=TriggerView,
        params=(
            _TRIGGER,
            Param("next", {"type": "integer", "minimum": 0, "maximum": 100}, "fire times (5)"),
        ),
    ),
    Op(
        "/v1/triggers/{trigger_id}",
        "PUT",
        "Pause or resume a trigger (409 once it is retired)",
        "operator",
        answer=TriggerView,
        params=(
            _TRIGGER,
            Param("action", {"enum": ["pause", "resume"]}, "what to do", required=True),
        ),
        errors=(400, 404, 409),
    ),
    Op(
        "/v1/triggers/{trigger_id}",
        "DELETE",
        "Retire a trigger: it fires no more; it and its instances' trigger_id stay",
        "admin",
        204,
        params=(_TRIGGER,),
        errors=(404,),
    ),
    Op("/v1/workers", "GET", "Registered workers", "viewer", answer=list[WorkerView], errors=()),
    Op(
        "/v1/workers",
        "POST",
        "Register (or re-register) a worker",
        "admin+worker",
        201,
        WorkerView,
        WorkerRegistration,
        errors=(400, 413),
    ),
    Op(
        "/v1/workers/{name}/heartbeat",
        "PUT",
        "A worker's heartbeat",
        "admin+worker",
        204,
        body=WorkerHeartbeat,
        params=(_path("name"),),
        errors=(400, 404, 413),
    ),
    Op(
        "/v1/workers/{name}",
        "DELETE",
        "Deregister a worker that stops; it gets no tasks until it registers again",
        "admin+worker",
        204,
        params=(_path("name"),),
        errors=(404,),
    ),
    Op(
        "/v1/reports",
        "POST",
        "Apply a batch of worker reports (progress, heartbeat, log, notify), each fenced by "
        "its attempt; one result per item",
        "admin+worker",
        answer=ReportResults,
        body=ReportBatch,
        errors=(400, 413),
    ),
    Op(
        "/v1/workers/{name}/drain",
        "PUT",
        "Give the worker no new tasks",
        "admin",
        answer=WorkerView,
        params=(_path("name"),),
        errors=(404,),
    ),
    Op(
        "/v1/types",
        "GET",
        "Task types, their params schemas and workers",
        "viewer",
        answer=list[TypeView],
        errors=(),
    ),
    Op("/health", "GET", "Liveness, including the database", "open", answer=Health, errors=()),
    Op(
        "/metrics",
        "GET",
        "Prometheus metrics",
        "viewer",
        answer={"type": "string"},
        errors=(),
        media="text/plain",
    ),
    Op("/openapi.json", "GET", "This document", "open", answer={"type": "object"}, errors=()),
)
