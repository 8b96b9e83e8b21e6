"""The worker contract (DESIGN §4): what the scheduler and a worker hosting plugins say to
each other, beyond the public bodies both serve.

Registration and heartbeats, the create body with the task's identity (``dispatch``), the
batched calls a scheduler makes (``POST /v1/batch``) and the batched reports a worker sends
(``POST /v1/reports``). Every call and every report names the attempt, which fences the
work of a superseded attempt.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec

from taskworker.contract.api import Action, CreateBody
from taskworker.contract.fields import (
    MAX_COUNT,
    AwareTime,
    Count,
    Id,
    TaskType,
    Url,
    WorkerName,
    check_time,
)

#: An attempt: the first is 1; stored in an INT column.
Attempt = Annotated[int, msgspec.Meta(ge=1, le=MAX_COUNT)]


class Undo(StrEnum):
    """What undoing a task of a type means (``Task.undo``), so that a saga and a revert
    know what to do before they ask the worker anything."""

    #: The plugin's ``rollback()`` step undoes what ``run`` did.
    ROLLBACK = "rollback"
    #: ``run`` changes nothing that would need undoing (``noop``, ``sleep``): undone as is.
    NOTHING = "nothing"
    #: What ``run`` did cannot be undone by the plugin.
    IMPOSSIBLE = "impossible"


def derived_undo(steps: Iterable[str]) -> Undo:
    """The undo of a plugin that does not declare one: ``rollback`` when it implements the
    step, else ``impossible`` (never ``nothing``: that is a claim only the plugin can make)."""
    return Undo.ROLLBACK if "rollback" in steps else Undo.IMPOSSIBLE


class TypeSpec(msgspec.Struct, kw_only=True):
    """One task type as a worker declares it; unknown keys are ignored for newer workers."""

    params_schema: dict[str, Any] = {}
    blocking: bool = True
    #: Only the admin role may submit a task of this type (``Task.privileged``): it runs
    #: commands as the worker's user. A worker that does not say declares an ordinary type;
    #: the scheduler still holds ``shell`` and ``script`` privileged by name.
    privileged: bool = False
    description: str | None = None
    #: The optional steps the plugin implements (``pause``, ``rollback``, ...).
    supports: list[str] = []
    #: Whether the plugin may name resources to lock (it overrides ``resources``). A type
    #: that names none is prepared in the transaction that creates it: one commit and one
    #: request less per task. A worker that does not say is taken to name some.
    declares_resources: bool = True
    #: What undoing a task of the type means. A worker that does not say (an older SDK, a
    #: worker in another language) gets the derived one (:func:`derived_undo`).
    undo: Undo | None = None

    def __post_init__(self) -> None:
        if self.undo is None:
            self.undo = derived_undo(self.supports)


class WorkerRegistration(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /v1/workers``: registering again under the same name replaces the entry."""

    name: WorkerName
    url: Url
    capacity: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1
    task_types: dict[TaskType, TypeSpec] = {}


class WorkerHeartbeat(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    running: Count = 0


class Reverted(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The finished task a revert undoes: its id (plugins that mark what they made with
    their task's id find their marks by it) and the result its ``run`` returned."""

    task_id: Id
    result: Any = None


class Dispatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Who the task is at the scheduler: added by the scheduler to the create body it sends.

    ``attempt`` fences: every later call and every report names it, and a newer attempt of the
    same task replaces an older one on the worker.
    """

    task_id: Id
    attempt: Attempt
    #: Authorises ``notify`` on this one task, for work the task hands to outside systems.
    notify_token: str | None = None
    #: The one target of a fan-out child (``ctx.target``); null for other tasks.
    target: Any = None
    #: Set on a revert: the task's work is then the plugin's ``rollback`` of the finished
    #: task named here, with the params sent (the reverted task's) and its result.
    reverts: Reverted | None = None


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
    task_id: Id
    attempt: Attempt
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
    task_id: Id
    attempt: Attempt


class ProgressReport(ReportBase, tag="progress"):
    percent: Annotated[float, msgspec.Meta(ge=0, le=100)]
    message: Annotated[str, msgspec.Meta(max_length=1024)] = ""


class HeartbeatReport(ReportBase, tag="heartbeat"):
    pass


class LogReport(ReportBase, tag="log"):
    message: Annotated[str, msgspec.Meta(max_length=65_536)]
    level: Literal["debug", "info", "warning", "error"] = "info"
    at: AwareTime | None = None

    def __post_init__(self) -> None:
        check_time("at", self.at)


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
