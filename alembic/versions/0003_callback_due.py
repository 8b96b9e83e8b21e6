"""The Callback loop's own column: when a finished task's callback is next due.

Revision ID: 0003_callback_due
Revises: 0002_topology_keys_log_offsets
Create Date: 2026-11-23 10:00:00

Before it, the loop found its work among all finished tasks on every pass, which grew with
the table. The callbacks already owed (finished, a ``callback_url``, no line in the log
saying delivered or abandoned) are due at once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from taskscheduler.db.models import UTCDateTime

revision = "0003_callback_due"
down_revision = "0002_topology_keys_log_offsets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("callback_due_at", UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_tasks_callback_due_at"), ["callback_due_at"])
    op.execute(
        "UPDATE tasks SET callback_due_at = finished_at "
        "WHERE state = 'finish' AND callback_url IS NOT NULL AND NOT EXISTS ("
        "SELECT 1 FROM task_logs g WHERE g.task_id = tasks.id AND "
        "(g.message LIKE 'callback delivered%' OR g.message LIKE 'callback abandoned%'))"
    )


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_callback_due_at"))
        batch_op.drop_column("callback_due_at")
