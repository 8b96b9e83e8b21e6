"""The scheduler's one settings object (DESIGN §5).

Defaults are embedded and need nothing installed: SQLite next to the process, the database
queue and the database locks. Production points ``TASK_DB_URL`` at MySQL/MariaDB and
``TASK_REDIS_URL`` at Redis; nothing else changes between one node and many.
"""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import Field, field_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from taskworker.config import (
    MIN_SECRET_BYTES,
    SettingsError,
    TaskSettings,
    checked_secret,
    load_settings,
)

ROLES = ("viewer", "operator", "admin")
# MIN_SECRET_BYTES, the shortest secret accepted (TASK_WORKER_SECRET, TASK_CALLBACK_SECRET),
# is the workers' rule, read from taskworker.config so that both sides agree.


def _default_node_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(TaskSettings):
    #: SQLAlchemy URL; ``sqlite:///path`` (embedded) or ``mysql+pymysql://user:pw@host/db``.
    db_url: str = "sqlite:///taskscheduler.db"
    #: ``redis://host:port/db``; when set, the queue and the locks live in Redis.
    redis_url: str | None = None
    #: ``auto`` picks Redis when ``redis_url`` is set, else the database.
    queue_backend: Literal["auto", "database", "redis"] = "auto"
    lock_backend: Literal["auto", "local", "database", "redis"] = "auto"
    #: ``token:role`` pairs, comma separated; roles are viewer, operator, admin.
    api_tokens: str = ""
    #: Serve the API without tokens even when not bound to loopback (local use only).
    open_api: bool = False
    #: ``HOST:PORT`` (or ``unix:PATH``) the API listens on; without tokens it must be loopback.
    bind: str = "127.0.0.1:8080"
    #: Shared by scheduler and workers to sign the requests between them (HMAC).
    worker_secret: str | None = None
    #: This node's name in leases, transition records and logs.
    node_name: str = Field(default_factory=_default_node_name)
    #: Leases (leadership, shards, locks) expire this long after their last renewal.
    lease_seconds: float = Field(default=10.0, gt=0)
    #: A running task whose heartbeat is older than this is failed by the Checker.
    heartbeat_timeout_seconds: float = Field(default=30.0, gt=0)
    #: Per-type concurrency limits across all nodes, ``type=count`` comma separated
    #: (``shell=4,sleep=10``); a task over its type's limit waits in ``postpose``.
    type_limits: str = ""
    #: Requests with a larger body get 413.
    max_body_bytes: int = Field(default=1 << 20, gt=0)
    #: Extra directories scanned for plugins (the standalone worker), besides ``plugins/``.
    plugin_dirs: list[str] = []
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    #: A JSON file of LogDumper rules (``[{name, source, pattern, template,
    #: dedup_seconds?}]``); without it the LogDumper does not run.
    logdumper_rules: str | None = None
    #: Most nodes one topology may have, nested topologies and fan-out targets included.
    topology_max_nodes: int = Field(default=1000, ge=1)
    #: Hosts callbacks may be sent to: patterns (``*.example.com``, ``10.0.0.*``), comma
    #: separated. Empty: callbacks are refused, so the node calls no address it was not told
    #: to trust.
    callback_allow: str = ""
    #: Signs every callback (``X-Task-Signature``), so a receiver can tell it is ours;
    #: required when ``callback_allow`` is set. Never the worker secret.
    callback_secret: str | None = None

    @field_validator("db_url")
    @classmethod
    def _db_url_parses(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL: {exc}") from None
        if url.get_backend_name() not in ("sqlite", "mysql", "mariadb"):
            raise ValueError(f"unsupported database {url.get_backend_name()!r} (sqlite or mysql)")
        return value

    @field_validator("worker_secret")
    @classmethod
    def _secret_long_enough(cls, value: str | None) -> str | None:
        return checked_secret(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_url_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value or None

    @field_validator("api_tokens")
    @classmethod
    def _tokens_have_roles(cls, value: str) -> str:
        for pair in filter(None, (p.strip() for p in value.split(","))):
            token, _, role = pair.rpartition(":")
            if not token or role not in ROLES:
                raise ValueError(f"{pair!r} is not token:role with role in {', '.join(ROLES)}")
        return value

    @field_validator("type_limits")
    @classmethod
    def _limits_are_counts(cls, value: str) -> str:
        for pair in filter(None, (p.strip() for p in value.split(","))):
            task_type, _, count = pair.partition("=")
            if not task_type.strip() or not count.strip().isdigit() or int(count) < 1:
                raise ValueError(f"{pair!r} is not type=count with a count of at least 1")
        return value

    @property
    def callback_hosts(self) -> list[str]:
        """The host patterns callbacks may go to (none: callbacks are refused)."""
        return [p.strip().lower() for p in self.callback_allow.split(",") if p.strip()]

    @property
    def limits(self) -> dict[str, int]:
        """Task type → how many of its tasks may be started at once."""
        pairs = (p.strip().partition("=") for p in self.type_limits.split(",") if p.strip())
        return {task_type.strip(): int(count) for task_type, _, count in pairs}

    @property
    def tokens(self) -> dict[str, str]:
        """Bearer token → role."""
        pairs = (p.strip().rpartition(":") for p in self.api_tokens.split(",") if p.strip())
        return {token: role for token, _, role in pairs}

    @property
    def uses_redis_queue(self) -> bool:
        return self.queue_backend == "redis" or (
            self.queue_backend == "auto" and self.redis_url is not None
        )

    def require_worker_secret(self) -> None:
        """A serving node needs the secret: without it no worker call is signed, no signed
        report verified and no notify token issued."""
        if not self.worker_secret:
            raise SettingsError(
                "TASK_WORKER_SECRET",
                f"required (at least {MIN_SECRET_BYTES} bytes, the same on every node and "
                "worker; e.g. the output of openssl rand -hex 32)",
            )

    def check(self) -> None:
        """Cross-field rules that no single field can check."""
        needs_redis = self.queue_backend == "redis" or self.lock_backend == "redis"
        if needs_redis and not self.redis_url:
            raise SettingsError("TASK_REDIS_URL", "required when a backend is set to redis")
        if self.callback_hosts:  # every callback is signed: no allowed host without the key
            key = self.callback_secret or ""
            if len(key.encode()) < MIN_SECRET_BYTES or key == self.worker_secret:
                raise SettingsError(
                    "TASK_CALLBACK_SECRET",
                    f"required with TASK_CALLBACK_ALLOW: at least {MIN_SECRET_BYTES} bytes, "
                    "not the worker secret",
                )


def load(**overrides: object) -> Settings:
    settings = load_settings(Settings, **overrides)
    settings.check()
    return settings
