"""An app over a real database with a fake worker's types registered through the API."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.taskscheduler.api.harness import Api, build_api


@pytest.fixture
def api(db_url: str, engine: Engine) -> Api:
    """On SQLite and on MariaDB."""
    return build_api(db_url, engine)


@pytest.fixture
def sqlite_api(sqlite_url: str, sqlite_engine: Engine) -> Api:
    """For the HTTP shape alone (auth, limits, the document): SQLite is enough."""
    return build_api(sqlite_url, sqlite_engine)


@pytest.fixture
def mysql_api(mysql_url: str, mysql_engine: Engine) -> Api:
    """MariaDB alone, for races only a server with row locks can show."""
    return build_api(mysql_url, mysql_engine)
