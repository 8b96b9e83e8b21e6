"""Triggers are retired, never erased; the Producer's watch over its shards.

Revision ID: 0006_triggers_retired
Revises: 0005_retry_backoff
Create Date: 2026-12-05 01:40:00

``DELETE /v1/triggers/{id}`` used to delete the row and unlink every instance the trigger
ever made, and SQLite then gave the next trigger the same id. Now it stamps
``triggers.retired_at``; the instances keep ``trigger_id``, and ids are never reused: on
SQLite the table is made ``AUTOINCREMENT`` (MariaDB's ``AUTO_INCREMENT`` never reuses one).

SQLite sets ``AUTOINCREMENT`` only when a table is created, so the table is created again.
Batch mode would copy it into a new table, drop the old one and rename the copy; with
foreign keys on (``tasks.trigger_id``) and the migration in one transaction, where
``PRAGMA foreign_keys`` cannot be switched off, the drop leaves the instances orphaned for
good. Here the references are deferred to the commit instead: the rows are kept aside, the
table dropped and created again under its own name, and the rows put back, which resolves
every reference before the commit checks them.

``trigger_shards`` holds, per shard of the Producer, since when some node has watched it
without a break and until when: the misfire rule tells a failover from a downtime by it
(``taskscheduler.triggers.base``).

The downgrade keeps retired triggers as paused ones.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from taskscheduler.db.models import UTCDateTime

revision = "0006_triggers_retired"
down_revision = "0005_retry_backoff"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(mysql.JSON(), "mysql")
#: The columns of ``triggers`` before this revision, as 0001 created them.
_BEFORE = (
    "id",
    "name",
    "kind",
    "cron",
    "interval_second",
    "times",
    "timezone",
    "overlap",
    "misfire",
    "enabled",
    "template",
    "next_fire_time",
    "last_fire_time",
    "failures",
    "version",
    "created_at",
    "updated_at",
)
_KEPT = "_triggers_kept"


def _columns(retired: bool) -> list[sa.Column[object]]:
    columns: list[sa.Column[object]] = [
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("cron", sa.String(length=255), nullable=True),
        sa.Column("interval_second", sa.Float(), nullable=True),
        sa.Column("times", _JSON, nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("overlap", sa.String(length=16), nullable=False),
        sa.Column("misfire", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("template", _JSON, nullable=False),
        sa.Column("next_fire_time", UTCDateTime(), nullable=True),
        sa.Column("last_fire_time", UTCDateTime(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    ]
    if retired:
        columns.append(sa.Column("retired_at", UTCDateTime(), nullable=True))
    return columns


def _recreate_on_sqlite(*, retired: bool) -> None:
    """Create ``triggers`` again (with ``retired_at`` and AUTOINCREMENT, or as 0001 made
    it), keeping its rows and ids; the references of ``tasks`` are checked at the commit."""
    names = ", ".join(_BEFORE)
    op.execute("PRAGMA defer_foreign_keys = ON")
    op.execute(f"CREATE TABLE {_KEPT} AS SELECT {names} FROM triggers")
    op.drop_table("triggers")
    op.create_table(
        "triggers",
        *_columns(retired),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_triggers")),
        sa.UniqueConstraint("name", name=op.f("uq_triggers_name")),
        sqlite_autoincrement=retired,
    )
    op.create_index(
        op.f("ix_triggers_enabled_next_fire_time"), "triggers", ["enabled", "next_fire_time"]
    )
    op.execute(f"INSERT INTO triggers ({names}) SELECT {names} FROM {_KEPT}")
    op.drop_table(_KEPT)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _recreate_on_sqlite(retired=True)
    else:
        op.add_column("triggers", sa.Column("retired_at", UTCDateTime(), nullable=True))
    op.create_table(
        "trigger_shards",
        sa.Column("shard", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("watched_since", UTCDateTime(), nullable=False),
        sa.Column("watched_until", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("shard", name=op.f("pk_trigger_shards")),
    )


def downgrade() -> None:
    op.drop_table("trigger_shards")
    op.execute("UPDATE triggers SET enabled = 0 WHERE retired_at IS NOT NULL")
    if op.get_bind().dialect.name == "sqlite":
        _recreate_on_sqlite(retired=False)
    else:
        op.drop_column("triggers", "retired_at")
