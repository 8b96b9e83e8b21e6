"""How long a failed task waits before each retry, as its ``process_arg`` gave it.

Revision ID: 0005_retry_backoff
Revises: 0004_paused_by_control
Create Date: 2026-12-05 01:30:00

Retries used to start at once. A task now waits before each retry as its
``process_arg.retry_backoff`` says; NULL, as every task stored before has it, means the
defaults (1 s, doubling, at most 300 s, ± 10 %).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0005_retry_backoff"
down_revision = "0004_paused_by_control"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ADD COLUMN on both databases: SQLite's batch mode would copy the table
    op.add_column(
        "tasks",
        sa.Column("retry_backoff", sa.JSON().with_variant(mysql.JSON(), "mysql"), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("retry_backoff")
