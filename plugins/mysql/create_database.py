"""``mysql_create_database``: create a database; rollback drops it if this task created it.

The database is created with the comment ``taskscheduler task <id>``. That makes the step
idempotent (a retry after a crash finds its own database and goes on) and the rollback safe
(it drops only a database this task created, never one that was there before).
"""

from __future__ import annotations

from typing import Any

from plugins.mysql.connection import (
    IDENTIFIER_SCHEMA,
    connect,
    instance_key,
    on_instance,
    quote,
)
from taskworker import Task, TaskContext, TaskFailed


class CreateDatabase(Task):
    """Creates a database on a MySQL/MariaDB instance."""

    task_type = "mysql_create_database"
    params_schema = on_instance(
        ["database"],
        database=IDENTIFIER_SCHEMA,
        charset={"type": "string", "pattern": r"^[a-z0-9_]{1,32}$"},
    )

    def resources(self, params: dict[str, Any]) -> list[str]:
        return [f"{instance_key(params['instance'])}/{params['database']}"]

    def run(self, ctx: TaskContext) -> dict[str, Any]:
        p = ctx.params
        mark = _mark(ctx)
        with connect(p["instance"], p["credentials"]) as conn, conn.cursor() as cur:
            owner = _comment(cur, p["database"])
            if owner is not None and owner != mark:
                raise TaskFailed(f"database {p['database']} already exists", retryable=False)
            charset = p.get("charset", "utf8mb4")
            cur.execute(
                f"CREATE DATABASE IF NOT EXISTS {quote(p['database'])} CHARACTER SET {charset}"
                " COMMENT %s",
                (mark,),
            )
        ctx.log(f"database {p['database']} created")
        return {"database": p["database"]}

    def rollback(self, ctx: TaskContext) -> None:
        p = ctx.params
        with connect(p["instance"], p["credentials"]) as conn, conn.cursor() as cur:
            if _comment(cur, p["database"]) != _mark(ctx):
                ctx.log(f"database {p['database']} was not created by this task: kept")
                return
            cur.execute(f"DROP DATABASE {quote(p['database'])}")
        ctx.log(f"database {p['database']} dropped")


def _mark(ctx: TaskContext) -> str:
    """The comment of a database the task made (a revert's rollback looks for the mark of
    the task it reverts)."""
    return f"taskscheduler task {ctx.owner_task_id}"


def _comment(cur: Any, database: str) -> str | None:
    """The database's comment, or None when it does not exist."""
    cur.execute(
        "SELECT SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
        (database,),
    )
    row = cur.fetchone()
    return None if row is None else str(row[0] or "")
