"""The public REST bodies of ``/v1`` (DESIGN §4): what clients send and what they read back.

Shared by the scheduler, which serves them, and by every worker, which answers the same
``/v1/task/{type}`` shapes; msgspec decodes and validates them in one pass (~1 µs for a
create body, where a jsonschema hook costs ~1.3 ms).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec

from taskworker.contract.codec import decode
from taskworker.contract.fields import (
    MAX_COUNT,
    AwareTime,
    Count,
    Deadline,
    Id,
    Interval,
    Level,
    Name,
    Resource,
    TaskType,
    Url,
    WaitSeconds,
    check_time,
)

#: Most tasks one ``POST /v1/tasks`` may hold (the body size limit applies as well).
MAX_BATCH = 1000
#: Most times one trigger may list.
MAX_TIMES = 1000


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
    #: A task that finished succeeded is undone by a new task of its type (answered 201).
    REVERT = "revert"


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
    parent_task_id: Id | None = None
    control_task_id: Id | None = None
    callback_url: Url | None = None
    idempotency_key: Name | None = None
    resources: list[Resource] | None = None
    #: A fan-out's targets, one task each; how many a create may have is a node's setting
    #: (``TASK_TOPOLOGY_MAX_NODES``), checked with the rest of the create.
    targets: Annotated[list[Any], msgspec.Meta(min_length=1)] | None = None
    strategy: Strategy | None = None
    max_parallel: Annotated[int, msgspec.Meta(ge=1, le=MAX_COUNT)] | None = None


class RetryBackoff(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """How long a failed task waits before each retry: retry ``n`` (0 for the first) waits
    ``min(max_second, initial_second * factor ** n)``, spread by ``± jitter`` (a fraction)
    so that tasks failed together by one outage are not retried together. A plugin's
    ``Retry(after=s)`` overrides the next wait."""

    initial_second: WaitSeconds = 1.0
    factor: Annotated[float, msgspec.Meta(ge=1, le=10)] = 2.0
    max_second: WaitSeconds = 300.0
    jitter: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.1

    def __post_init__(self) -> None:
        if self.max_second < self.initial_second:
            raise ValueError("Invalid field `max_second`: must not be less than initial_second")


class ProcessArg(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    start_time: AwareTime | None = None
    deadline_second: Deadline | None = 3600
    lock_timeout: WaitSeconds = 30
    max_retry: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0
    #: The wait before each retry; null: the defaults of :class:`RetryBackoff`.
    retry_backoff: RetryBackoff | None = None
    #: ``pause`` records the task and pauses it at once; it waits for ``continue``.
    task_status: Literal["init", "pause"] = "init"

    def __post_init__(self) -> None:
        check_time("start_time", self.start_time)


class CreateBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    create_info: CreateInfo = msgspec.field(default_factory=CreateInfo)
    process_arg: ProcessArg = msgspec.field(default_factory=ProcessArg)
    params: dict[str, Any] = msgspec.field(default_factory=dict)


class CreateBatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /v1/tasks``: many create bodies stored in one transaction, each naming its type
    in ``create_info.task_type``."""

    tasks: Annotated[list[CreateBody], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


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
    nodes: Annotated[list[TopologyNode], msgspec.Meta(min_length=1)] | None = None
    on_failure: OnFailure = "stop"


class TopologyBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /v1/topology``: a DAG of tasks under one control task."""

    name: Name
    #: At most ``TASK_TOPOLOGY_MAX_NODES`` in all, nested topologies' nodes and fan-out
    #: targets included (a node's setting, checked before anything is stored).
    nodes: Annotated[list[TopologyNode], msgspec.Meta(min_length=1)]
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
    interval_second: Interval | None = None
    times: (
        Annotated[
            list[Annotated[str, msgspec.Meta(max_length=64)]],
            msgspec.Meta(min_length=1, max_length=MAX_TIMES),
        ]
        | None
    ) = None
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
    #: A revert's: the finished task whose run it undoes (``action=revert``).
    reverts_task_id: int | None = None


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


class LogLine(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    message: Annotated[str, msgspec.Meta(max_length=65_536)]
    level: Literal["debug", "info", "warning", "error"] = "info"
    at: AwareTime | None = None
    attempt: Count | None = None

    def __post_init__(self) -> None:
        check_time("at", self.at)


class LogBatch(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /v1/tasks/{id}/logs``: workers send lines in batches (one commit per batch)."""

    lines: Annotated[list[LogLine], msgspec.Meta(min_length=1, max_length=1000)]


class ErrorBody(msgspec.Struct, omit_defaults=True):
    title: str
    description: str
    field: str | None = None


def decode_create(data: bytes | str) -> CreateBody:
    return decode(data, CreateBody)
