"""A task may revert a finished one: the column that links the two.

Revision ID: 0007_reverts
Revises: 0006_triggers_retired
Create Date: 2026-12-05 01:30:00

``PUT /v1/task/{type}?task_id=N&action=revert`` creates a task of the same type whose work
is the plugin's rollback of task N; ``tasks.reverts_task_id`` names N (indexed: a second
revert of N is refused while one runs or after one succeeded).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_reverts"
down_revision = "0006_triggers_retired"
branch_labels = None
depends_on = None

#: The names the models' naming convention gives (taskscheduler.db.models.NAMING).
FOREIGN_KEY = "fk_tasks_reverts_task_id_tasks"
INDEX = "ix_tasks_reverts_task_id"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # a plain ADD COLUMN with its reference inline: SQLite alters no constraints, and
        # batch mode would copy the table
        op.execute(
            "ALTER TABLE tasks ADD COLUMN reverts_task_id INTEGER "
            f"CONSTRAINT {FOREIGN_KEY} REFERENCES tasks (id)"
        )
    else:
        op.add_column("tasks", sa.Column("reverts_task_id", sa.BigInteger(), nullable=True))
    op.create_index(INDEX, "tasks", ["reverts_task_id"])
    if op.get_bind().dialect.name != "sqlite":
        op.create_foreign_key(FOREIGN_KEY, "tasks", "tasks", ["reverts_task_id"], ["id"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(FOREIGN_KEY, "tasks", type_="foreignkey")
    op.drop_index(INDEX, table_name="tasks")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("reverts_task_id")
