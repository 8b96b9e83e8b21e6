"""``mysql_create_user``: create a user with grants; rollback drops it if this task made it.

The new user's password comes from a credentials reference (``password_credentials``), so
it never passes through params, the scheduler's database, logs or results. Which users a
task created is recorded on the instance itself (``_taskscheduler.owned``), so a rollback —
possibly in another attempt, on another worker — drops only a user this task created.
"""

from __future__ import annotations

from typing import Any

from plugins.mysql.connection import (
    CREDENTIALS_SCHEMA,
    IDENTIFIER_SCHEMA,
    connect,
    instance_key,
    on_instance,
    quote,
    resolve,
)
from taskworker import Task, TaskContext, TaskFailed

PRIVILEGES = [
    "ALL PRIVILEGES",
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "ALTER",
    "INDEX",
    "CREATE VIEW",
    "SHOW VIEW",
    "TRIGGER",
    "EXECUTE",
    "LOCK TABLES",
    "REFERENCES",
    "PROCESS",
    "RELOAD",
    "REPLICATION CLIENT",
    "REPLICATION SLAVE",
]
_OWNED = """CREATE TABLE IF NOT EXISTS _taskscheduler.owned (
    kind VARCHAR(16) NOT NULL, name VARCHAR(255) NOT NULL, task_id BIGINT NOT NULL,
    PRIMARY KEY (kind, name))"""


class CreateUser(Task):
    """Creates a MySQL/MariaDB user and grants it privileges."""

    task_type = "mysql_create_user"
    params_schema = on_instance(
        ["user", "password_credentials"],
        user=IDENTIFIER_SCHEMA,
        host={"type": "string", "pattern": r"^[A-Za-z0-9_.%:-]{1,255}$"},
        password_credentials=CREDENTIALS_SCHEMA,
        grants={
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "privileges": {
                        "type": "array",
                        "items": {"enum": PRIVILEGES},
                        "minItems": 1,
                    },
                    "on": {
                        "type": "string",
                        "pattern": r"^(\*|[A-Za-z0-9_$]{1,64})\.(\*|[A-Za-z0-9_$]{1,64})$",
                    },
                },
                "required": ["privileges", "on"],
                "additionalProperties": False,
            },
        },
    )

    def resources(self, params: dict[str, Any]) -> list[str]:
        return [f"{instance_key(params['instance'])}/user:{params['user']}"]

    def run(self, ctx: TaskContext) -> dict[str, Any]:
        p = ctx.params
        account = _account(p)
        password = resolve(p["password_credentials"]).password
        with connect(p["instance"], p["credentials"]) as conn, conn.cursor() as cur:
            owner = _owner(cur, account)
            exists = bool(
                cur.execute(
                    "SELECT 1 FROM mysql.user WHERE User = %s AND Host = %s",
                    (p["user"], p.get("host", "%")),
                )
            )
            if exists and owner != ctx.task_id:
                raise TaskFailed(f"user {account} already exists", retryable=False)
            if not exists:
                cur.execute(
                    "INSERT INTO _taskscheduler.owned VALUES ('user', %s, %s)"
                    " ON DUPLICATE KEY UPDATE task_id = VALUES(task_id)",
                    (account, ctx.task_id),
                )
                cur.execute(f"CREATE USER {account} IDENTIFIED BY %s", (password,))
            for grant in p.get("grants", []):
                ctx.checkpoint()
                target = ".".join(
                    part if part == "*" else quote(part) for part in grant["on"].split(".")
                )
                cur.execute(f"GRANT {', '.join(grant['privileges'])} ON {target} TO {account}")
        ctx.log(f"user {account} created with {len(p.get('grants', []))} grant(s)")
        return {"user": p["user"], "host": p.get("host", "%"), "grants": p.get("grants", [])}

    def rollback(self, ctx: TaskContext) -> None:
        p = ctx.params
        account = _account(p)
        with connect(p["instance"], p["credentials"]) as conn, conn.cursor() as cur:
            if _owner(cur, account) != ctx.owner_task_id:  # a revert's: the reverted task's
                ctx.log(f"user {account} was not created by this task: kept")
                return
            cur.execute(f"DROP USER IF EXISTS {account}")
            cur.execute(
                "DELETE FROM _taskscheduler.owned WHERE kind = 'user' AND name = %s", (account,)
            )
        ctx.log(f"user {account} dropped")


def _account(p: dict[str, Any]) -> str:
    return f"'{p['user']}'@'{p.get('host', '%')}'"


def _owner(cur: Any, account: str) -> int | None:
    cur.execute("CREATE DATABASE IF NOT EXISTS _taskscheduler")
    cur.execute(_OWNED)
    cur.execute(
        "SELECT task_id FROM _taskscheduler.owned WHERE kind = 'user' AND name = %s", (account,)
    )
    row = cur.fetchone()
    return None if row is None else int(row[0])
