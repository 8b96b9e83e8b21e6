"""The schema, as typed declarative models. The database is the source of truth.

The tables are created only by the alembic migrations in ``alembic/versions``; these models
describe them for queries and for ``alembic revision --autogenerate``. Every index below
serves a query the API or a loop makes; the comment beside it names the query.

Times are stored as naive UTC (``UTCDateTime``) with microseconds on every backend, and come
back as aware UTC datetimes, so nothing downstream ever compares naive with aware.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

#: Constraint names are fixed so that migrations can name what they drop on every backend.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: BIGINT on MySQL, INTEGER on SQLite (so SQLite's rowid aliasing gives autoincrement ids).
Id = BigInteger().with_variant(Integer(), "sqlite")
#: MySQL's JSON is LONGTEXT on MariaDB; the generic JSON type serialises for us on both.
Json = JSON().with_variant(mysql.JSON(), "mysql")
#: TEXT without length limits on MySQL for log lines and errors.
LongText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC with microseconds; returns aware UTC."""

    impl = DateTime
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Task(Base):
    """One task: the create body (DESIGN §4), its state and everything the loops need."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    # create_info
    task_type: Mapped[str] = mapped_column(String(64))
    task_name: Mapped[str | None] = mapped_column(String(255))
    important_level: Mapped[int] = mapped_column(Integer, default=5)
    http_url: Mapped[str | None] = mapped_column(String(1024))
    parent_task_id: Mapped[int | None] = mapped_column(Id, ForeignKey("tasks.id"))
    control_task_id: Mapped[int | None] = mapped_column(Id, ForeignKey("tasks.id"))
    callback_url: Mapped[str | None] = mapped_column(String(1024))
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    resources: Mapped[list[str]] = mapped_column(Json, default=list)
    targets: Mapped[list[Any] | None] = mapped_column(Json)
    strategy: Mapped[str | None] = mapped_column(String(32))
    max_parallel: Mapped[int | None] = mapped_column(Integer)
    #: For a fan-out child: the one target it runs on.
    target: Mapped[Any] = mapped_column(Json, nullable=True)
    #: For a child of a topology: its node's key; for a fan-out child: its target's index.
    node_key: Mapped[str | None] = mapped_column(String(255))
    #: A revert: the finished task whose run this task undoes (``action=revert``).
    reverts_task_id: Mapped[int | None] = mapped_column(Id, ForeignKey("tasks.id"))
    # process_arg
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline_second: Mapped[float | None] = mapped_column(Float)
    lock_timeout: Mapped[float] = mapped_column(Float, default=30)
    max_retry: Mapped[int] = mapped_column(Integer, default=0)
    #: ``process_arg.retry_backoff`` as given; NULL: the defaults (read only to retry).
    retry_backoff: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    # state
    state: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(16))
    #: The state a paused task returns to on ``continue``.
    paused_from: Mapped[str | None] = mapped_column(String(16))
    #: Paused by its control task (not by an operator), so the control task's ``continue``
    #: resumes it; written by every ``pause``.
    paused_by_control: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Incremented each time the task is (re)started on a worker; fences stale reports.
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    #: Optimistic concurrency: every write is ``UPDATE ... WHERE id=? AND version=?``.
    version: Mapped[int] = mapped_column(Integer, default=1)
    #: Not dispatched before this time (start_time, or a retry's backoff).
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[Any] = mapped_column(Json, nullable=True)
    error: Mapped[Any] = mapped_column(Json, nullable=True)
    progress_percent: Mapped[float] = mapped_column(Float, default=0.0)
    progress_message: Mapped[str] = mapped_column(String(1024), default="")
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    worker: Mapped[str | None] = mapped_column(String(1024))
    # kinds
    kind: Mapped[str] = mapped_column(String(16), default="simple")
    on_failure: Mapped[str | None] = mapped_column(String(16))
    trigger_id: Mapped[int | None] = mapped_column(Id, ForeignKey("triggers.id"))
    fire_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # timestamps
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When the callback to ``callback_url`` is next due; NULL when none is owed (not
    #: finished, no URL, delivered or abandoned), so the Callback loop reads only its work.
    callback_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # Dispatcher: ready tasks by state and time; Checker: running tasks by heartbeat.
        Index(None, "state", "ready_at"),
        Index(None, "state", "heartbeat_at"),
        # /v1/tasks?type=&state= and per-type concurrency counts.
        Index(None, "task_type", "state"),
        # /v1/task/{type}?task_name= (latest first) and /v1/tasks?name=.
        Index(None, "task_name", "id"),
        # /v1/tasks/{id}/children and /v1/tasks?parent=.
        Index(None, "parent_task_id"),
        Index(None, "control_task_id"),
        # /v1/tasks?since= and ?outcome=.
        Index(None, "created_at"),
        Index(None, "outcome", "id"),
        # The ControlLoop: control tasks (topologies, fan-outs) touched since their last pass.
        Index(None, "kind", "ready_at"),
        # The Callback loop: the callbacks owed, by when they are due.
        Index(None, "callback_due_at"),
        # action=revert: the reverts of a task (one at a time).
        Index(None, "reverts_task_id"),
        # The Producer's exactly-once guarantee: one instance per (trigger, fire time).
        UniqueConstraint("trigger_id", "fire_time"),
    )


class TransitionRecord(Base):
    """Append-only: who moved which task from where to where, when and why."""

    __tablename__ = "task_transitions"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(Id, ForeignKey("tasks.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(16))
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(String(1024))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # /v1/tasks/{id}/transitions in order.
    __table_args__ = (Index(None, "task_id", "id"),)


class TaskLog(Base):
    __tablename__ = "task_logs"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(Id, ForeignKey("tasks.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    level: Mapped[str] = mapped_column(String(8), default="info")
    message: Mapped[str] = mapped_column(LongText)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # /v1/tasks/{id}/logs?after=<id> (paged and followed by id).
    __table_args__ = (Index(None, "task_id", "id"),)


class TaskEdge(Base):
    """A DAG edge: ``task_id`` starts only after ``depends_on_id`` succeeded."""

    __tablename__ = "task_edges"

    task_id: Mapped[int] = mapped_column(
        Id, ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    depends_on_id: Mapped[int] = mapped_column(
        Id, ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )

    # When a task finishes: which tasks waited for it.
    __table_args__ = (Index(None, "depends_on_id"),)


class TriggerDefinition(Base):
    """A timed or permanent task definition; the Producer turns it into instances."""

    __tablename__ = "triggers"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    cron: Mapped[str | None] = mapped_column(String(255))
    interval_second: Mapped[float | None] = mapped_column(Float)
    times: Mapped[list[str] | None] = mapped_column(Json)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    overlap: Mapped[str] = mapped_column(String(16), default="skip")
    misfire: Mapped[str] = mapped_column(String(16), default="fire_once")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    template: Mapped[dict[str, Any]] = mapped_column(Json)
    next_fire_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_fire_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Permanent tasks: consecutive failed instances, which grows the restart backoff.
    failures: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When ``DELETE`` retired it: it fires no more and its instances keep ``trigger_id``.
    #: Triggers are never erased, and their ids never reused (AUTOINCREMENT on SQLite).
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # The Producer: enabled triggers due by next_fire_time.
    __table_args__ = (Index(None, "enabled", "next_fire_time"), {"sqlite_autoincrement": True})


class TriggerShard(Base):
    """The Producer's watch over one shard of the triggers: since when some node has watched
    it without a break, and until when its owner last said so. The next owner tells a
    failover from a downtime by it (:func:`taskscheduler.triggers.base.watch_since`)."""

    __tablename__ = "trigger_shards"

    shard: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    holder: Mapped[str] = mapped_column(String(255))
    watched_since: Mapped[datetime] = mapped_column(UTCDateTime)
    watched_until: Mapped[datetime] = mapped_column(UTCDateTime)


class LogOffset(Base):
    """Where the LogDumper stands in one file of one rule: written in the transaction that
    stores the tasks made of the lines before it, so a restart neither repeats nor skips."""

    __tablename__ = "log_offsets"

    rule: Mapped[str] = mapped_column(String(255), primary_key=True)
    path: Mapped[str] = mapped_column(String(512), primary_key=True)
    inode: Mapped[int] = mapped_column(Id)
    offset: Mapped[int] = mapped_column(Id)
    #: The last bytes before ``offset`` (hex), which tell a truncated file that grew back.
    tail: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WorkerNode(Base):
    """A registered worker: where it listens, what it serves, whether it is alive."""

    __tablename__ = "workers"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(1024))
    name: Mapped[str] = mapped_column(String(255), unique=True)
    task_types: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    running: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="active")
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # The Checker: workers whose heartbeat stopped.
    __table_args__ = (Index(None, "status", "heartbeat_at"),)


class Lease(Base):
    """A named lease (leadership, a shard, a resource lock) with a fencing token.

    ``token`` only ever grows for a given name, so a holder that lost its lease can be told
    apart from the current one by any write that carries its token.
    """

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(255))
    token: Mapped[int] = mapped_column(Id, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Reclaiming expired leases.
    __table_args__ = (Index(None, "expires_at"),)
