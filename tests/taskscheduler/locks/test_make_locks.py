"""Which lock backend a node uses, from its settings."""

from __future__ import annotations

import pytest

from taskscheduler.locks import DatabaseLocks, LocalLocks, make_locks
from taskscheduler.locks.redis import RedisLocks
from taskscheduler.settings import Settings


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, DatabaseLocks),
        ({"redis_url": "redis://127.0.0.1:6379/0"}, RedisLocks),
        ({"redis_url": "redis://127.0.0.1:6379/0", "lock_backend": "database"}, DatabaseLocks),
        ({"lock_backend": "local"}, LocalLocks),
        ({"lock_backend": "redis", "redis_url": "redis://127.0.0.1:6379/0"}, RedisLocks),
    ],
)
def test_the_backend_follows_the_settings(sqlite_engine, values, expected):
    locks = make_locks(Settings(**values), sqlite_engine)
    try:
        assert type(locks) is expected
    finally:
        locks.close()


def test_a_redis_backend_without_a_redis_url_is_refused(sqlite_engine):
    with pytest.raises(ValueError, match="TASK_REDIS_URL"):
        make_locks(Settings(lock_backend="redis"), sqlite_engine)
