"""What every lock backend promises (taskscheduler.locks.base.Locks), proven on each:
in-process, the database on SQLite and MariaDB, and Redis.

Each test gets two ``Locks`` objects over the same store, as two nodes would have them
(separate engines, separate Redis clients); the local backend is one process's table, so
both are the same object used from different threads.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from taskscheduler.db import migrate
from taskscheduler.db.engine import make_engine
from taskscheduler.locks import DatabaseLocks, KeepAlive, LocalLocks, Locks

Pair = tuple[Locks, Locks]


def _database_pair(url: str) -> Iterator[Pair]:
    migrate.upgrade(url)
    engines = [make_engine(url), make_engine(url)]
    yield DatabaseLocks(engines[0]), DatabaseLocks(engines[1])
    for engine in engines:
        engine.dispose()


@pytest.fixture(params=["local", "sqlite", "mysql", "redis"])
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    if request.param == "local":
        local = LocalLocks()
        yield local, local
    elif request.param == "redis":
        from taskscheduler.locks.redis import RedisLocks

        url = request.getfixturevalue("redis_url")
        first, second = RedisLocks.from_url(url), RedisLocks.from_url(url)
        yield first, second
        first.close()
        second.close()
    else:
        yield from _database_pair(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def name() -> str:
    return f"lock-{uuid.uuid4().hex[:8]}"


def test_a_held_name_is_refused_to_another_holder_until_released(pair, name):
    a, b = pair
    # Given a holds the name
    token = a.acquire(name, "a", ttl=30)
    # Then b cannot take it, and sees who holds it
    assert token is not None
    assert b.acquire(name, "b", ttl=30) is None
    assert b.holder_of(name) == "a"
    # When a releases it, b takes it
    assert a.release(name, token) is True
    assert b.holder_of(name) is None
    assert b.acquire(name, "b", ttl=30) is not None
    assert a.holder_of(name) == "b"


def test_two_threads_never_hold_the_name_at_once(pair, name):
    a, b = pair
    inside, most_inside, turns = 0, 0, []
    guard = threading.Lock()

    def contend(locks: Locks, me: str) -> None:
        nonlocal inside, most_inside
        for _ in range(8):
            while (token := locks.acquire(name, me, ttl=30)) is None:
                locks.wait(name, timeout=10)
            with guard:
                inside += 1
                most_inside = max(most_inside, inside)
            time.sleep(0.002)  # hold it a little, so the other thread tries meanwhile
            with guard:
                inside -= 1
                turns.append(me)
            assert locks.release(name, token)

    threads = [
        threading.Thread(target=contend, args=(locks, me)) for locks, me in ((a, "a"), (b, "b"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # Then every turn was taken, and never two at once
    assert sorted(turns) == ["a"] * 8 + ["b"] * 8
    assert most_inside == 1


def test_an_expired_lease_frees_the_name(pair, name):
    a, b = pair
    # Given a took the name briefly and then went silent (a dead holder)
    first = a.acquire(name, "a", ttl=0.3)
    assert b.acquire(name, "b", ttl=30) is None
    # When its lease runs out, the name is free for b, with a greater token
    assert b.wait(name, timeout=10) is True
    second = b.acquire(name, "b", ttl=30)
    assert first is not None and second is not None and second > first
    assert a.holder_of(name) == "b"


def test_renewing_keeps_the_lease_past_its_ttl(pair, name):
    a, b = pair
    token = a.acquire(name, "a", ttl=2.0)
    assert token is not None
    # When a renews it well within each ttl, for longer than one ttl
    renewed = []
    for _ in range(6):
        time.sleep(0.5)
        renewed.append(a.renew(name, token, ttl=2.0))
    # Then every renewal held and b still cannot take it
    assert renewed == [True] * 6
    assert b.acquire(name, "b", ttl=30) is None
    assert b.holder_of(name) == "a"


def test_a_stale_token_can_neither_renew_nor_release(pair, name):
    a, b = pair
    # Given a's lease expired and b took the name over
    stale = a.acquire(name, "a", ttl=0.3)
    assert stale is not None
    assert b.wait(name, timeout=10)
    current = b.acquire(name, "b", ttl=30)
    assert current is not None
    # When a comes back with its old token
    renewed, released = a.renew(name, stale, ttl=30), a.release(name, stale)
    # Then both are refused and b still holds it
    assert (renewed, released) == (False, False)
    assert a.holder_of(name) == "b"
    assert a.acquire(name, "a", ttl=30) is None
    assert b.renew(name, current, ttl=30) is True


def test_taking_the_name_again_makes_the_old_token_stale(pair, name):
    a, _ = pair
    # Given a holder that takes its own name again (a restarted node of the same name)
    old = a.acquire(name, "a", ttl=30)
    new = a.acquire(name, "a", ttl=30)
    # Then only the new token counts
    assert old is not None and new is not None and new > old
    assert a.renew(name, old, ttl=30) is False
    assert a.release(name, old) is False
    assert a.release(name, new) is True


def test_fencing_tokens_grow_strictly_across_holders(pair, name):
    a, b = pair
    tokens = []
    for locks, me in [(a, "a"), (b, "b"), (a, "a"), (a, "a"), (b, "b")]:
        token = locks.acquire(name, me, ttl=30)
        assert token is not None
        tokens.append(token)
        assert locks.release(name, token)
    # Released names keep their counter: a later holder never gets an earlier token
    assert tokens == sorted(set(tokens))
    assert len(tokens) == 5


def test_wait_returns_when_the_name_is_released(pair, name):
    a, b = pair
    token = a.acquire(name, "a", ttl=60)
    assert token is not None
    events: list[object] = []
    waiting = threading.Event()

    def waiter() -> None:
        waiting.set()
        events.append(("woke", b.wait(name, timeout=60)))

    thread = threading.Thread(target=waiter)
    thread.start()
    waiting.wait(10)
    time.sleep(0.3)  # long enough to be asleep in wait, if it were going to return early
    # Given the waiter is still blocked while a holds the name (ttl and timeout 60 s)
    assert events == []
    # When a releases it
    events.append("released")
    assert a.release(name, token)
    thread.join(30)
    # Then the waiter returned because of the release, long before its timeout or the ttl
    assert not thread.is_alive()
    assert events == ["released", ("woke", True)]


def test_wait_on_a_free_name_returns_at_once_and_on_a_held_one_times_out(pair, name):
    a, b = pair
    assert b.wait(name, timeout=0) is True
    assert a.acquire(name, "a", ttl=60) is not None
    assert b.wait(name, timeout=0.2) is False


def test_keep_alive_holds_the_lock_over_several_ttls(pair, name):
    a, b = pair
    token = a.acquire(name, "a", ttl=1.0)
    assert token is not None
    # Given a keep-alive renewing a's lease (ttl 1 s) from its thread
    with KeepAlive(a, name, token, ttl=1.0) as keep:
        time.sleep(3.0)
        # Then after three ttls a still holds it, and nothing was lost
        assert b.acquire(name, "b", ttl=30) is None
        assert not keep.lost.is_set()
    # And leaving the block released it
    assert b.holder_of(name) is None


def test_keep_alive_reports_the_loss_of_its_lock(pair, name):
    a, b = pair
    token = a.acquire(name, "a", ttl=30)
    assert token is not None
    lost = threading.Event()
    keep = KeepAlive(a, name, token, ttl=30, interval=0.05, on_lost=lost.set).start()
    try:
        # When someone frees the lease behind the keep-alive's back and b takes it
        assert a.release(name, token)
        assert b.acquire(name, "b", ttl=30) is not None
        # Then the keep-alive says it lost the lock, and b keeps it
        assert lost.wait(10)
        assert keep.lost.is_set()
        assert a.holder_of(name) == "b"
    finally:
        keep.stop()
