"""``mysql_schema_change``: run a DDL statement; its rollback runs the reverse statement.

The task locks ``mysql:<host>:<port>/<database>.<table>``, so a second schema change on the
same table waits in ``postpose`` until the first finishes, instead of fighting it for the
metadata lock. One statement per step: the client refuses multi-statement strings.
"""

from __future__ import annotations

from typing import Any

from plugins.mysql.connection import (
    IDENTIFIER_SCHEMA,
    connect,
    instance_key,
    on_instance,
)
from taskworker import Task, TaskContext, TaskFailed

STATEMENT = {"type": "string", "minLength": 1, "maxLength": 65536}


class SchemaChange(Task):
    """Runs a DDL statement on one table; rollback runs the given reverse DDL."""

    task_type = "mysql_schema_change"
    params_schema = on_instance(
        ["database", "table", "ddl"],
        database=IDENTIFIER_SCHEMA,
        table=IDENTIFIER_SCHEMA,
        ddl=STATEMENT,
        rollback_ddl=STATEMENT,
    )

    def resources(self, params: dict[str, Any]) -> list[str]:
        instance = instance_key(params["instance"])
        return [f"{instance}/{params['database']}.{params['table']}"]

    def run(self, ctx: TaskContext) -> dict[str, Any]:
        return self._execute(ctx, ctx.params["ddl"])

    def rollback(self, ctx: TaskContext) -> None:
        reverse = ctx.params.get("rollback_ddl")
        if not reverse:
            raise TaskFailed("no rollback_ddl was given", retryable=False)
        self._execute(ctx, reverse)

    def _execute(self, ctx: TaskContext, statement: str) -> dict[str, Any]:
        p = ctx.params
        ctx.log(f"{p['database']}.{p['table']}: {statement}")
        with connect(p["instance"], p["credentials"], p["database"]) as conn:
            try:
                with conn.cursor() as cur:
                    cur.execute(statement)
            except Exception as exc:  # the server's own verdict on the DDL
                raise TaskFailed(f"DDL failed: {exc}", retryable=False) from None
        return {"database": p["database"], "table": p["table"], "statement": statement}
