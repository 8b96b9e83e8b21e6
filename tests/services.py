"""Where the test suite finds MariaDB and Redis, and what it does when they are missing.

With ``TASK_TEST_REQUIRE_SERVICES=1`` (set by ``.ci/run``) a missing service fails the tests
that need it; otherwise they are skipped with the reason. Tests use a schema and a Redis
database of their own and never touch anything else on the servers.
"""

from __future__ import annotations

import os
import uuid

import pytest

MYSQL_SERVER_URL = os.environ.get("TASK_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
REDIS_SERVER_URL = os.environ.get("TASK_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def services_required() -> bool:
    return os.environ.get("TASK_TEST_REQUIRE_SERVICES") == "1"


def unavailable(service: str, error: BaseException) -> None:
    message = f"{service} is not reachable: {error}"
    if services_required():
        pytest.fail(f"{message} (TASK_TEST_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


def create_mysql_database() -> str:
    """Create a fresh, uniquely named database and return its SQLAlchemy URL."""
    import pymysql
    from sqlalchemy.engine import make_url

    server = make_url(MYSQL_SERVER_URL)
    name = f"ts_test_{uuid.uuid4().hex[:12]}"
    try:
        conn = pymysql.connect(
            host=server.host or "127.0.0.1",
            port=server.port or 3306,
            user=server.username or "root",
            password=server.password or "",
        )
    except pymysql.MySQLError as exc:
        unavailable("MariaDB/MySQL", exc)
    with conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    return str(server.set(database=name).render_as_string(hide_password=False))


def drop_mysql_database(url: str) -> None:
    import pymysql
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    conn = pymysql.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 3306,
        user=parsed.username or "root",
        password=parsed.password or "",
    )
    with conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{parsed.database}`")


def empty_redis_url() -> str:
    """A Redis database number that holds no keys (rq's find_empty_redis_database)."""
    import redis

    for db in range(15, 0, -1):
        url = f"{REDIS_SERVER_URL}/{db}"
        try:
            client = redis.Redis.from_url(url)
            keys = client.dbsize()
        except redis.RedisError as exc:
            unavailable("Redis", exc)
        client.close()
        if keys == 0:
            return url
    pytest.fail("no empty Redis database between 1 and 15", pytrace=False)
