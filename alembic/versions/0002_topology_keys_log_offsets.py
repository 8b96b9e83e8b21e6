"""Topology node keys and the control tasks' index on tasks; the LogDumper's offsets.

Revision ID: 0002_topology_keys_log_offsets
Revises: 0001_initial
Create Date: 2026-11-23 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from taskscheduler.db.models import UTCDateTime

revision = "0002_topology_keys_log_offsets"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("node_key", sa.String(length=255), nullable=True))
        batch_op.create_index(batch_op.f("ix_tasks_kind_ready_at"), ["kind", "ready_at"])
    op.create_table(
        "log_offsets",
        sa.Column("rule", sa.String(length=255), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("inode", Id, nullable=False),
        sa.Column("offset", Id, nullable=False),
        sa.Column("tail", sa.String(length=64), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("rule", "path", name=op.f("pk_log_offsets")),
    )


def downgrade() -> None:
    op.drop_table("log_offsets")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_kind_ready_at"))
        batch_op.drop_column("node_key")
