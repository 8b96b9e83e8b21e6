"""Shared fixtures: real databases (SQLite and MariaDB), real Redis, a clean environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from taskscheduler.db import migrate
from taskscheduler.db.engine import make_engine, read_pool_checked_out
from tests import services


@pytest.fixture(autouse=True)
def _clean_task_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TASK_* setting of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("TASK_") and not name.startswith("TASK_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tasks.db'}"


@pytest.fixture
def mysql_url() -> Iterator[str]:
    url = services.create_mysql_database()
    yield url
    services.drop_mysql_database(url)


@pytest.fixture(params=["sqlite", "mysql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """An empty database with the current schema, on each supported backend."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    migrate.upgrade(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    leaked = eng.pool.checkedout() + read_pool_checked_out(eng)  # type: ignore[attr-defined]
    eng.dispose()
    assert leaked == 0, f"{leaked} pooled connection(s) left checked out"


def _migrated_engine(url: str) -> Iterator[Engine]:
    migrate.upgrade(url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


@pytest.fixture
def mysql_engine(mysql_url: str) -> Iterator[Engine]:
    """MariaDB alone, for what only a server with row locks can show."""
    yield from _migrated_engine(mysql_url)


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    yield from _migrated_engine(sqlite_url)


@pytest.fixture
def redis_url() -> Iterator[str]:
    import redis

    url = services.empty_redis_url()
    yield url
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
