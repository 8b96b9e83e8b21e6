"""Wire shapes of the uniform task contract (DESIGN §4), shared by scheduler and worker.

One definition serves both sides: the scheduler decodes a create body with
:func:`decode_create`, a worker hosting plugins decodes the same body, and both answer with
:class:`TaskView`. msgspec both decodes and validates in one pass (~1 µs for a create body,
where a jsonschema hook costs ~1.3 ms); its errors carry the JSON path, which
:func:`decode` turns into an :class:`InvalidInput` naming the field.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from taskworker.errors import InvalidInput

#: Highest ``important_level``; the queue keeps one FIFO per level, higher served first.
MAX_IMPORTANT_LEVEL = 9
#: A task type names a plugin; it appears in URLs, so keep it to a safe alphabet.
TASK_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"

TaskType = Annotated[str, msgspec.Meta(pattern=TASK_TYPE_PATTERN)]
Level = Annotated[int, msgspec.Meta(ge=0, le=MAX_IMPORTANT_LEVEL)]
PositiveSeconds = Annotated[float, msgspec.Meta(gt=0)]
Name = Annotated[str, msgspec.Meta(max_length=255)]
Url = Annotated[str, msgspec.Meta(pattern=r"^https?://", max_length=1024)]
Resource = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
#: Times on the wire carry their zone (``Z`` or an offset); a naive time is ambiguous.
AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]


class Action(StrEnum):
    """``PUT /v1/task/{type}?task_id=ID&action=A``; the worker serves the first eight."""

    PREPARE = "prepare"
    RUNNING = "running"
    PAUSE = "pause"
    CONTINUE = "continue"
    ROLLBACK = "rollback"
    CHANGE = "change"
    CLEAN = "clean"
    CANCEL = "cancel"
    NOTIFY = "notify"
    HEARTBEAT = "heartbeat"
    PROGRESS = "progress"
    RETRY = "retry"


class Query(StrEnum):
    """``GET /v1/task/{type}?task_id=ID&action=Q``; no action means the whole task."""

    STATUS = "status"
    PROGRESS = "progress"
    SUMMARY = "summary"
    HEARTBEAT = "heartbeat"


class Strategy(StrEnum):
    SERIAL_BLOCKING = "serial_blocking"
    SERIAL_NONBLOCKING = "serial_nonblocking"
    PARALLEL = "parallel"


class CreateInfo(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    task_type: TaskType | None = None
    task_name: Name | None = None
    important_level: Level = 5
    http_url: Url | None = None
    parent_task_id: int | None = None
    control_task_id: int | None = None
    callback_url: Url | None = None
    idempotency_key: Name | None = None
    resources: list[Resource] | None = None
    targets: list[Any] | None = None
    strategy: Strategy | None = None
    max_parallel: Annotated[int, msgspec.Meta(ge=1)] | None = None


class ProcessArg(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    start_time: AwareTime | None = None
    deadline_second: PositiveSeconds | None = 3600
    lock_timeout: Annotated[float, msgspec.Meta(ge=0)] = 30
    max_retry: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0
    #: ``pause`` records the task and pauses it at once; it waits for ``continue``.
    task_status: Literal["init", "pause"] = "init"


class CreateBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    create_info: CreateInfo = msgspec.field(default_factory=CreateInfo)
    process_arg: ProcessArg = msgspec.field(default_factory=ProcessArg)
    params: dict[str, Any] = msgspec.field(default_factory=dict)


class CreateBatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /v1/tasks``: many create bodies stored in one transaction, each naming its type
    in ``create_info.task_type``."""

    tasks: list[CreateBody]


OnFailure = Literal["stop", "rollback"]


class TopologyNode(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A node of ``POST /v1/topology``: a task, or (``task_type: topology``) a topology of
    its own ``nodes``."""

    key: Name
    task_type: TaskType
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    depends_on: list[Name] = msgspec.field(default_factory=list)
    create_info: CreateInfo | None = None
    process_arg: ProcessArg | None = None
    nodes: list[TopologyNode] | None = None
    on_failure: OnFailure = "stop"


class TopologyBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /v1/topology``: a DAG of tasks under one control task."""

    name: Name
    nodes: list[TopologyNode]
    on_failure: OnFailure = "stop"
    #: For the control task: priority, ``callback_url``, ``idempotency_key`` and the like.
    create_info: CreateInfo | None = None


class TriggerBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /v1/triggers``: a timed (cron, interval or list of times) or permanent task
    definition; the Producer makes ``template`` into instances carrying ``trigger_id`` and
    ``fire_time``."""

    name: Name
    kind: Literal["timed", "permanent"] = "timed"
    cron: Annotated[str, msgspec.Meta(max_length=255)] | None = None
    interval_second: Annotated[float, msgspec.Meta(gt=0)] | None = None
    times: list[str] | None = None
    timezone: Annotated[str, msgspec.Meta(max_length=64)] = "UTC"
    overlap: Literal["skip", "queue", "allow"] = "skip"
    misfire: Literal["fire_once", "skip"] = "fire_once"
    enabled: bool = True
    #: A create body naming its type in ``create_info.task_type``.
    template: CreateBody


class ProgressBody(msgspec.Struct, forbid_unknown_fields=True):
    percent: Annotated[float, msgspec.Meta(ge=0, le=100)]
    message: Annotated[str, msgspec.Meta(max_length=1024)] = ""


class NotifyBody(msgspec.Struct, forbid_unknown_fields=True):
    success: bool
    result: Any = None
    error: Any = None


class ChangeBody(msgspec.Struct, forbid_unknown_fields=True):
    """``change``: new params (replacing the old ones) and/or process_arg values."""

    params: dict[str, Any] | None = None
    process_arg: dict[str, Any] | None = None


class Progress(msgspec.Struct):
    percent: float = 0.0
    message: str = ""


class TaskView(msgspec.Struct, kw_only=True):
    """A task as every response shows it: the create body's fields, flattened."""

    task_id: int
    task_type: str
    task_name: str | None
    task_status: str
    outcome: str | None
    important_level: int
    parent_task_id: int | None
    control_task_id: int | None
    params: dict[str, Any]
    result: Any
    error: Any
    retry_count: int
    max_retry: int
    attempt: int
    progress: Progress
    worker: str | None
    created_at: datetime
    updated_at: datetime
    http_url: str | None = None
    callback_url: str | None = None
    idempotency_key: str | None = None
    resources: list[str] = []
    targets: list[Any] | None = None
    strategy: str | None = None
    max_parallel: int | None = None
    start_time: datetime | None = None
    deadline_second: float | None = None
    lock_timeout: float = 30
    paused_from: str | None = None
    heartbeat_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    trigger_id: int | None = None
    fire_time: datetime | None = None
    #: ``simple``, or ``topology`` / ``fanout`` for a control task (which runs on no worker).
    kind: str = "simple"
    #: A topology child's node key; a fan-out child's target index.
    node_key: str | None = None
    #: A fan-out child's one target.
    target: Any = None


class StatusView(msgspec.Struct):
    task_id: int
    task_status: str
    outcome: str | None


class TransitionView(msgspec.Struct):
    from_state: str
    to_state: str
    trigger: str
    actor: str
    at: datetime
    reason: str | None
    attempt: int


#: A worker's registered name: it appears in URLs and in transition records as ``worker:<name>``.
WorkerName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,254}$")]


class TypeSpec(msgspec.Struct, kw_only=True):
    """One task type as a worker declares it; unknown keys are ignored for newer workers."""

    params_schema: dict[str, Any] = {}
    blocking: bool = True
    description: str | None = None
    #: The optional steps the plugin implements (``pause``, ``rollback``, ...).
    supports: list[str] = []
    #: Whether the plugin may name resources to lock (it overrides ``resources``). A type
    #: that names none is prepared in the transaction that creates it: one commit and one
    #: request less per task. A worker that does not say is taken to name some.
    declares_resources: bool = True


class WorkerRegistration(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /v1/workers``: registering again under the same name replaces the entry."""

    name: WorkerName
    url: Url
    capacity: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1
    task_types: dict[TaskType, TypeSpec] = {}


class WorkerHeartbeat(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    running: Annotated[int, msgspec.Meta(ge=0)] = 0


class LogLine(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    message: Annotated[str, msgspec.Meta(max_length=65_536)]
    level: Literal["debug", "info", "warning", "error"] = "info"
    at: AwareTime | None = None
    attempt: int | None = None


class LogBatch(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /v1/tasks/{id}/logs``: workers send lines in batches (one commit per batch)."""

    lines: Annotated[list[LogLine], msgspec.Meta(min_length=1, max_length=1000)]


class Dispatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Who the task is at the scheduler: added by the scheduler to the create body it sends.

    ``attempt`` fences: every later call and every report names it, and a newer attempt of the
    same task replaces an older one on the worker.
    """

    task_id: Annotated[int, msgspec.Meta(ge=1)]
    attempt: Annotated[int, msgspec.Meta(ge=1)]
    #: Authorises ``notify`` on this one task, for work the task hands to outside systems.
    notify_token: str | None = None
    #: The one target of a fan-out child (``ctx.target``); null for other tasks.
    target: Any = None


class WorkerCreateBody(CreateBody, forbid_unknown_fields=True, kw_only=True):
    """``POST /v1/task/{type}`` on a worker: the scheduler's create body plus the identity."""

    dispatch: Dispatch


class CreateCall(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, tag_field="call", tag="create"
):
    """An item of ``POST /v1/batch``: ``POST /v1/task/{task_type}`` with ``body``."""

    task_type: TaskType
    body: WorkerCreateBody


class ActCall(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, tag_field="call", tag="act"
):
    """An item of ``POST /v1/batch``: ``PUT /v1/task/{task_type}?task_id&action&attempt``."""

    task_type: TaskType
    task_id: Annotated[int, msgspec.Meta(ge=1)]
    attempt: Annotated[int, msgspec.Meta(ge=1)]
    action: Action
    body: dict[str, Any] | None = None


class CallBatch(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /v1/batch`` on a worker: many contract calls in one signed request, applied in
    order, each exactly as if it had been sent alone. Optional for a worker: a scheduler that
    gets 404 for the path makes the calls one by one."""

    calls: Annotated[list[CreateCall | ActCall], msgspec.Meta(min_length=1, max_length=1000)]


class CallResult(msgspec.Struct):
    """One call's answer: the status and body it would have had alone."""

    status: int
    body: Any


class CallResults(msgspec.Struct):
    results: list[CallResult]


class ReportBase(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, tag_field="kind"):
    """One item of a report batch; the ``attempt`` fences reports of superseded attempts."""

    task_type: TaskType
    task_id: Annotated[int, msgspec.Meta(ge=1)]
    attempt: Annotated[int, msgspec.Meta(ge=1)]


class ProgressReport(ReportBase, tag="progress"):
    percent: Annotated[float, msgspec.Meta(ge=0, le=100)]
    message: Annotated[str, msgspec.Meta(max_length=1024)] = ""


class HeartbeatReport(ReportBase, tag="heartbeat"):
    pass


class LogReport(ReportBase, tag="log"):
    message: Annotated[str, msgspec.Meta(max_length=65_536)]
    level: Literal["debug", "info", "warning", "error"] = "info"
    at: AwareTime | None = None


class NotifyReport(ReportBase, tag="notify"):
    """The attempt ended (a synchronous run returned, a rollback finished, a step failed).

    ``step`` says which: the end of a ``rollback`` can reach the scheduler before the
    ``rollback`` move is recorded there (the move is written once the worker accepted the
    command, and a quick undo reports sooner); it is then answered 503 and sent again.
    """

    success: bool
    result: Any = None
    error: Any = None
    step: Literal["run", "rollback"] = "run"


Report = ProgressReport | HeartbeatReport | LogReport | NotifyReport


class ReportBatch(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /v1/reports``: many reports of many tasks in one request, applied in order."""

    reports: Annotated[list[Report], msgspec.Meta(min_length=1, max_length=1000)]


class ReportResult(msgspec.Struct, omit_defaults=True):
    """The fate of one report: ``status`` as if it had been sent alone (200, 404, 409, ...)."""

    status: int
    title: str | None = None
    description: str | None = None


class ReportResults(msgspec.Struct):
    results: list[ReportResult]


class WorkerHeartbeatView(msgspec.Struct):
    """``GET ...&action=heartbeat`` on a worker: the last sign of life of the task's step."""

    task_id: int
    heartbeat_at: datetime | None
    worker: str | None


class ErrorBody(msgspec.Struct, omit_defaults=True):
    title: str
    description: str
    field: str | None = None


T = TypeVar("T")
#: msgspec's error suffix; a bad mapping key reads "at `key` in `$.path`".
_PATH = re.compile(r" - at `(?:key` in `)?\$(?P<path>[^`]*)`$")


def decode(data: bytes | str, shape: type[T], *, root: str = "body") -> T:
    """Decode and validate JSON into ``shape``; on failure name the offending field."""
    try:
        return msgspec.json.decode(data, type=shape)
    except msgspec.ValidationError as exc:
        raise _invalid(str(exc), root) from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(root or "body", f"not valid JSON ({exc})") from None


def convert(obj: Any, shape: type[T], *, root: str = "body") -> T:
    """Validate already-parsed JSON (e.g. a TOML table or a template) into ``shape``."""
    try:
        return msgspec.convert(obj, type=shape)
    except msgspec.ValidationError as exc:
        raise _invalid(str(exc), root) from None


def _invalid(message: str, root: str) -> InvalidInput:
    found = _PATH.search(message)
    path = found.group("path") if found else ""
    text = _PATH.sub("", message)
    unknown = re.match(r"Object contains unknown field `(?P<name>[^`]+)`", text)
    missing = re.match(r"Object missing required field `(?P<name>[^`]+)`", text)
    named = unknown or missing
    if named:
        path = f"{path}.{named.group('name')}"
    # An empty root names fields from the top (``params.seconds``), the whole value "body".
    field = f"{root}{path}" if root else (path.lstrip(".") or "body")
    return InvalidInput(field, text)


def decode_create(data: bytes | str) -> CreateBody:
    return decode(data, CreateBody)


def encode(obj: Any) -> bytes:
    return msgspec.json.encode(obj)
