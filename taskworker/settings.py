"""The worker's settings (DESIGN §5): ``TASK_*`` variables, the TOML file, then the flags.

A worker without a ``TASK_WORKER_SECRET`` of at least
:data:`~taskworker.config.MIN_SECRET_BYTES` bytes refuses to start: every request it serves
changes what runs on its host, and every report it sends changes a task's record, so neither
side may accept an unsigned request, nor one signed with a key short enough to guess.
"""

from __future__ import annotations

import socket
from typing import Any

from pydantic import Field, field_validator

from taskworker.config import (
    MIN_SECRET_BYTES,
    SettingsError,
    TaskSettings,
    checked_secret,
    load_settings,
)
from taskworker.contract.codec import convert
from taskworker.contract.fields import Url, WorkerName
from taskworker.errors import InvalidInput


def _default_name() -> str:
    return socket.gethostname()


class WorkerSettings(TaskSettings):
    #: Shared by scheduler and workers to sign the requests between them (HMAC).
    worker_secret: str | None = None
    #: Where the scheduler's API listens, e.g. ``http://10.0.0.5:8080``; by default the port
    #: a node binds by default (``taskscheduler serve``), on this host.
    scheduler_url: str = "http://127.0.0.1:8080"
    #: ``HOST:PORT`` this worker listens on.
    worker_bind: str = "127.0.0.1:8100"
    #: The URL the scheduler calls this worker at (default: ``http://`` + the bind address).
    worker_advertise_url: str | None = None
    #: The registered name; unique among the scheduler's workers.
    worker_name: str = Field(default_factory=_default_name)
    #: Steps this worker runs at once; a create beyond it is answered 503 with Retry-After.
    worker_capacity: int = Field(default=4, ge=1, le=1000)
    #: Extra directories scanned for plugins, besides the shipped ``plugins/``.
    plugin_dirs: list[str] = []
    #: How long a cancelled or stopping step may take to reach a checkpoint before it is
    #: abandoned (and reported) anyway.
    worker_grace_seconds: float = Field(default=10.0, ge=0)
    #: ``prepare`` runs within the request; longer than this fails the task.
    prepare_timeout_seconds: float = Field(default=30.0, gt=0)
    #: Worker heartbeats to the scheduler, and heartbeats of each running task.
    worker_heartbeat_seconds: float = Field(default=3.0, gt=0)
    #: How long a stopping worker keeps trying to deliver its last reports.
    report_flush_seconds: float = Field(default=10.0, ge=0)

    @field_validator("worker_secret")
    @classmethod
    def _secret_long_enough(cls, value: str | None) -> str | None:
        return checked_secret(value)

    @field_validator("scheduler_url", "worker_advertise_url")
    @classmethod
    def _is_url(cls, value: str | None) -> str | None:
        if value is not None:
            _check(value, Url)
        return value.rstrip("/") if value else value

    @field_validator("worker_name")
    @classmethod
    def _is_name(cls, value: str) -> str:
        _check(value, WorkerName)
        return value

    @property
    def advertise_url(self) -> str:
        return self.worker_advertise_url or f"http://{self.worker_bind}"

    def check(self) -> None:
        if not self.worker_secret:
            raise SettingsError(
                "TASK_WORKER_SECRET",
                f"required (at least {MIN_SECRET_BYTES} bytes, the same as the scheduler's): "
                "the worker accepts only signed requests",
            )


def _check(value: str, shape: Any) -> None:
    try:
        convert(value, shape, root="")
    except InvalidInput as exc:
        raise ValueError(str(exc).removeprefix("body: ")) from None


def load(**overrides: Any) -> WorkerSettings:
    settings = load_settings(WorkerSettings, **overrides)
    settings.check()
    return settings
