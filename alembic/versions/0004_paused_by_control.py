"""Whether a paused task was paused by its control task, as a column of its own.

Revision ID: 0004_paused_by_control
Revises: 0003_callback_due
Create Date: 2026-12-05 00:30:00

A control task's ``continue`` resumes the children it paused, not those an operator paused
one by one. The fact used to be read back from the reason text of each child's last pause
record; it is now stored by the pause itself. The children paused by their control task at
the upgrade are found the old way, once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_paused_by_control"
down_revision = "0003_callback_due"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ADD COLUMN on both databases: SQLite's batch mode would copy the table
    op.add_column(
        "tasks",
        sa.Column("paused_by_control", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.execute(
        "UPDATE tasks SET paused_by_control = 1 "
        "WHERE state = 'pause' AND control_task_id IS NOT NULL AND ("
        "SELECT r.reason FROM task_transitions r "
        "WHERE r.task_id = tasks.id AND r.trigger = 'pause' ORDER BY r.id DESC LIMIT 1"
        ") = CONCAT('control task ', tasks.control_task_id, ' paused')"
        if op.get_bind().dialect.name != "sqlite"
        else "UPDATE tasks SET paused_by_control = 1 "
        "WHERE state = 'pause' AND control_task_id IS NOT NULL AND ("
        "SELECT r.reason FROM task_transitions r "
        "WHERE r.task_id = tasks.id AND r.trigger = 'pause' ORDER BY r.id DESC LIMIT 1"
        ") = 'control task ' || tasks.control_task_id || ' paused'"
    )


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("paused_by_control")
