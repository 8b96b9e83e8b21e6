"""Engines for the two supported databases, tuned for many processes sharing one store.

SQLite (the embedded default) runs in WAL mode so readers never block the writer, with a
busy timeout so concurrent processes wait instead of failing, and every write transaction
starts with ``BEGIN IMMEDIATE``: a deferred transaction that reads and then writes can fail
at once with ``SQLITE_BUSY`` when another process committed in between (no timeout helps
there), while ``IMMEDIATE`` takes the write lock up front and queues behind the busy timeout.
Read-only work takes its connection from :func:`reading`, which opts out.

MySQL/MariaDB runs at READ COMMITTED: the state machine guards every write with a version
check, so REPEATABLE READ's gap locks would only add lock waits and deadlocks.

A pooled MySQL connection costs no round trip beyond its own statements on the hot path
(docs/performance.md): it is pinged only when it comes back to use after
:data:`PING_AFTER_IDLE_SECONDS` or more in the pool (one left idle may have been dropped by
a server restart or ``wait_timeout``; one used a moment ago has not), and it is not rolled
back when returned, since a :class:`~sqlalchemy.engine.Connection` ends its own transaction
on close. A server on loopback is spoken to without TLS unless the URL asks for it: pymysql
would otherwise build a TLS context for every new connection (tens of milliseconds) to
protect bytes that never leave the machine. A ``DATETIME`` is parsed by
:meth:`datetime.fromisoformat` (C) rather than pymysql's regular expression: a page of tasks
has hundreds of them.

Read-only work (every list and query of the API, every pass of a loop that finds nothing to
do) takes its MySQL connection from a second pool of the engine whose connections are in
autocommit mode (:func:`reading`): a read through the first pool opens a transaction that
only a ``ROLLBACK``, one more round trip, can end, and which holds the metadata locks of the
tables it read until then. In autocommit mode each statement is its own transaction, ended
by the server with the statement, and SQLAlchemy is told to send no ``ROLLBACK``
(``skip_autocommit_rollback``). At READ COMMITTED every statement reads its own snapshot
in either mode, so what several statements read is the same.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from pymysql import converters
from pymysql.constants import FIELD_TYPE
from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import URL, make_url

#: How long a SQLite writer waits for another process's write lock.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Pooled MySQL connections are replaced after this, below the server's wait_timeout.
MYSQL_POOL_RECYCLE_SECONDS = 1800
#: A pooled MySQL connection idle this long is pinged before use.
PING_AFTER_IDLE_SECONDS = 1.0
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
#: Each MySQL engine's pool for read-only work.
_READERS: WeakKeyDictionary[Engine, Engine] = WeakKeyDictionary()


def make_engine(db_url: str, *, pool_size: int = 10, echo: bool = False) -> Engine:
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(db_url, echo)
    connect_args: dict[str, Any] = {"charset": "utf8mb4", "conv": CONVERSIONS}
    if _plain_loopback(url):
        connect_args["ssl_disabled"] = True

    def pooled(**options: Any) -> Engine:
        made = create_engine(
            url,
            echo=echo,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_recycle=MYSQL_POOL_RECYCLE_SECONDS,
            pool_reset_on_return=None,
            connect_args=connect_args,
            **options,
        )
        _ping_when_idle(made)
        return made

    engine = pooled(isolation_level="READ COMMITTED")
    reader = pooled(isolation_level="AUTOCOMMIT", skip_autocommit_rollback=True)
    _READERS[engine] = reader
    event.listen(engine, "engine_disposed", lambda _engine: reader.dispose())
    return engine


def reading(engine: Engine) -> Connection:
    """A connection for work that only reads: from the engine's autocommit pool on MySQL
    (no ``ROLLBACK`` after it, see the module docstring), a deferred transaction on SQLite.
    Nothing written through it is atomic with anything else."""
    reader = _READERS.get(engine)
    if reader is None:
        return engine.connect().execution_options(readonly=True)
    return reader.connect()


def read_pool_checked_out(engine: Engine) -> int:
    """How many connections of ``engine``'s read pool are in use (0 without one)."""
    reader = _READERS.get(engine)
    return 0 if reader is None else int(reader.pool.checkedout())  # type: ignore[attr-defined]


def _datetime(value: str) -> datetime | str:
    try:
        return datetime.fromisoformat(value)
    except ValueError:  # a zero date and the like, returned as pymysql returns them
        found: datetime | str = converters.convert_datetime(value)
        return found


#: pymysql's conversions, with the fast ``DATETIME``.
CONVERSIONS = {
    **converters.conversions,
    FIELD_TYPE.DATETIME: _datetime,
    FIELD_TYPE.TIMESTAMP: _datetime,
}


def _plain_loopback(url: URL) -> bool:
    """A server on this machine, with no TLS option in the URL."""
    asks_tls = any(key.startswith("ssl") for key in url.query)
    return (url.host or "localhost") in LOOPBACK_HOSTS and not asks_tls


def _ping_when_idle(engine: Engine) -> None:
    """Ping a connection that sat in the pool for a while; a dead one is replaced before
    the caller sees it (SQLAlchemy retries the checkout on ``DisconnectionError``)."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # new, or back from use a moment ago
        try:
            dbapi_conn.ping(reconnect=False)
        except Exception as error:
            raise exc.DisconnectionError(f"pooled connection is gone: {error}") from error


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
