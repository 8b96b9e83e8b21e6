"""Engines for the two supported databases, tuned for many processes sharing one store.

SQLite (the embedded default) runs in WAL mode so readers never block the writer, with a
busy timeout so concurrent processes wait instead of failing, and every write transaction
starts with ``BEGIN IMMEDIATE``: a deferred transaction that reads and then writes can fail
at once with ``SQLITE_BUSY`` when another process committed in between (no timeout helps
there), while ``IMMEDIATE`` takes the write lock up front and queues behind the busy timeout.
Read-only work opts out with ``connection.execution_options(readonly=True)``.

MySQL/MariaDB runs at READ COMMITTED: the state machine guards every write with a version
check, so REPEATABLE READ's gap locks would only add lock waits and deadlocks.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

#: How long a SQLite writer waits for another process's write lock.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Pooled MySQL connections are replaced after this, below the server's wait_timeout.
MYSQL_POOL_RECYCLE_SECONDS = 1800


def make_engine(db_url: str, *, pool_size: int = 10, echo: bool = False) -> Engine:
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(db_url, echo)
    return create_engine(
        db_url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=MYSQL_POOL_RECYCLE_SECONDS,
        isolation_level="READ COMMITTED",
        connect_args={"charset": "utf8mb4"},
    )


def _sqlite_engine(db_url: str, echo: bool) -> Engine:
    engine = create_engine(db_url, echo=echo, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite would defer it).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        readonly = conn.get_execution_options().get("readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine
