"""Lines in a task's log written by the scheduler itself: why an attempt moved, what a
change set, how a callback went. Workers' lines arrive in batches
(:meth:`~taskscheduler.tasks.read.TaskQueries.append_logs`, reports); these are one each,
in the transaction of what they explain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert

from taskscheduler.db.tables import LOGS

INSERT_LOG = insert(LOGS)


def write_log(
    conn: Connection,
    task_id: int,
    attempt: int,
    message: str,
    *,
    at: datetime,
    level: str = "info",
) -> None:
    """Append one line to the task's log, in ``conn``'s transaction."""
    conn.execute(
        INSERT_LOG,
        {"task_id": task_id, "attempt": attempt, "level": level, "message": message, "at": at},
    )
