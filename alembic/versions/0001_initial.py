"""The initial schema: tasks, transition records, logs, DAG edges, triggers, workers, leases.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-22 23:39:00.530608
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from taskscheduler.db.models import UTCDateTime

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=True),
        sa.Column("token", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    with op.batch_alter_table("leases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_leases_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "triggers",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("cron", sa.String(length=255), nullable=True),
        sa.Column("interval_second", sa.Float(), nullable=True),
        sa.Column("times", sa.JSON().with_variant(mysql.JSON(), "mysql"), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("overlap", sa.String(length=16), nullable=False),
        sa.Column("misfire", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("template", sa.JSON().with_variant(mysql.JSON(), "mysql"), nullable=False),
        sa.Column("next_fire_time", UTCDateTime(), nullable=True),
        sa.Column("last_fire_time", UTCDateTime(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_triggers")),
        sa.UniqueConstraint("name", name=op.f("uq_triggers_name")),
    )
    with op.batch_alter_table("triggers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_triggers_enabled_next_fire_time"),
            ["enabled", "next_fire_time"],
            unique=False,
        )

    op.create_table(
        "workers",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("url", sa.String(length=1024), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("task_types", sa.JSON().with_variant(mysql.JSON(), "mysql"), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("running", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
        sa.Column("registered_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
        sa.UniqueConstraint("name", name=op.f("uq_workers_name")),
    )
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_workers_status_heartbeat_at"), ["status", "heartbeat_at"], unique=False
        )

    op.create_table(
        "tasks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("task_type", sa.String(length=64), nullable=False),
        sa.Column("task_name", sa.String(length=255), nullable=True),
        sa.Column("important_level", sa.Integer(), nullable=False),
        sa.Column("http_url", sa.String(length=1024), nullable=True),
        sa.Column(
            "parent_task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "control_task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("callback_url", sa.String(length=1024), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("resources", sa.JSON().with_variant(mysql.JSON(), "mysql"), nullable=False),
        sa.Column("targets", sa.JSON().with_variant(mysql.JSON(), "mysql"), nullable=True),
        sa.Column("strategy", sa.String(length=32), nullable=True),
        sa.Column("max_parallel", sa.Integer(), nullable=True),
        sa.Column("target", sa.JSON().with_variant(mysql.JSON(), "mysql"), nullable=True),
        sa.Column("start_time", UTCDateTime(), nullable=True),
        sa.Column("deadline_second", sa.Float(), nullable=True),
        sa.Column("lock_timeout", sa.Float(), nullable=False),
        sa.Column("max_retry", sa.Integer(), nullable=False),
        sa.Column("params", sa.JSON().with_variant(mysql.JSON(), "mysql"), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("paused_from", sa.String(length=16), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("retry_count", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("ready_at", UTCDateTime(), nullable=True),
        sa.Column("result", sa.JSON().with_variant(mysql.JSON(), "mysql"), nullable=True),
        sa.Column("error", sa.JSON().with_variant(mysql.JSON(), "mysql"), nullable=True),
        sa.Column("progress_percent", sa.Float(), nullable=False),
        sa.Column("progress_message", sa.String(length=1024), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=True),
        sa.Column("worker", sa.String(length=1024), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("on_failure", sa.String(length=16), nullable=True),
        sa.Column(
            "trigger_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("fire_time", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["control_task_id"], ["tasks.id"], name=op.f("fk_tasks_control_task_id_tasks")
        ),
        sa.ForeignKeyConstraint(
            ["parent_task_id"], ["tasks.id"], name=op.f("fk_tasks_parent_task_id_tasks")
        ),
        sa.ForeignKeyConstraint(
            ["trigger_id"], ["triggers.id"], name=op.f("fk_tasks_trigger_id_triggers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_tasks_idempotency_key")),
        sa.UniqueConstraint("trigger_id", "fire_time", name=op.f("uq_tasks_trigger_id_fire_time")),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tasks_control_task_id"), ["control_task_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_tasks_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_tasks_outcome_id"), ["outcome", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_tasks_parent_task_id"), ["parent_task_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_tasks_state_heartbeat_at"), ["state", "heartbeat_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_tasks_state_ready_at"), ["state", "ready_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_tasks_task_name_id"), ["task_name", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_tasks_task_type_state"), ["task_type", "state"], unique=False
        )

    op.create_table(
        "task_edges",
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "depends_on_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["depends_on_id"],
            ["tasks.id"],
            name=op.f("fk_task_edges_depends_on_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_task_edges_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("task_id", "depends_on_id", name=op.f("pk_task_edges")),
    )
    with op.batch_alter_table("task_edges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_task_edges_depends_on_id"), ["depends_on_id"], unique=False
        )

    op.create_table(
        "task_logs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("message", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql"), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_task_logs_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_logs")),
    )
    with op.batch_alter_table("task_logs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_task_logs_task_id_id"), ["task_id", "id"], unique=False
        )

    op.create_table(
        "task_transitions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.String(length=1024), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_task_transitions_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_transitions")),
    )
    with op.batch_alter_table("task_transitions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_task_transitions_task_id_id"), ["task_id", "id"], unique=False
        )


def downgrade() -> None:
    # Dropping a table drops its indexes; dropping them first fails on MySQL (FK needs them).
    op.drop_table("task_transitions")
    op.drop_table("task_logs")
    op.drop_table("task_edges")
    op.drop_table("tasks")
    op.drop_table("workers")
    op.drop_table("triggers")
    op.drop_table("leases")
