"""Retries that wait, failures that cannot be retried, and a start time one can see, for real.

A ``taskscheduler standalone`` node (API under gunicorn, the loops process, a worker with the
shipped plugins and two test plugins from a plugin directory) over an SQLite file; the test
speaks HTTP to it and judges by the transition records, as a user would: when each attempt
ended, when the next one was created, and what the records say.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from taskscheduler.db import migrate
from tests import services
from tests.processes import PYTHON, call, free_port, running, wait_until

#: Plugins a user could write: one that asks to be retried later, one whose ``prepare``
#: finds the work impossible.
PLUGINS = '''
from taskworker import Retry, Task, TaskFailed


class ComeBackLater(Task):
    """Asks to be retried after the seconds it is given."""

    task_type = "come_back_later"

    def run(self, ctx):
        raise Retry(after=ctx.params["seconds"], message="the replica is catching up")


class ImpossibleTarget(Task):
    """Its checks find that no attempt could ever succeed."""

    task_type = "impossible_target"

    def prepare(self, ctx):
        raise TaskFailed("the target host was decommissioned", retryable=False)

    def run(self, ctx):
        return {"ran": True}
'''


@contextmanager
def standalone(tmp_path: Path, *, redis_url: str | None = None) -> Iterator[str]:
    """A standalone node serving the test plugins; its URL."""
    plugins = tmp_path / "retry_plugins"  # not "plugins": the node's cwd would shadow ours
    plugins.mkdir()
    (plugins / "retrying.py").write_text(PLUGINS)
    db_url = f"sqlite:///{tmp_path / 'tasks.db'}"
    migrate.upgrade(db_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"TASK_DB_URL": db_url, "TASK_PLUGIN_DIRS": f'["{plugins}"]'}
    if redis_url:
        env["TASK_REDIS_URL"] = redis_url
    argv = [PYTHON, "-m", "taskscheduler", "standalone", "--bind", f"127.0.0.1:{port}"]
    with running(argv, url=base, log_path=tmp_path / "node.log", cwd=tmp_path, env=env):
        wait_until(
            lambda: (
                "impossible_target" in {t["task_type"] for t in call("GET", f"{base}/v1/types")}
            ),
            30,
            what="the worker registered with the test plugins",
        )
        yield base


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with standalone(tmp_path_factory.mktemp("retries")) as base:
        yield base


def submit(base: str, task_type: str, body: dict[str, Any]) -> dict[str, Any]:
    return dict(call("POST", f"{base}/v1/task/{task_type}", body))


def finished(base: str, task: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
    url = f"{base}/v1/task/{task['task_type']}?task_id={task['task_id']}"
    return dict(
        wait_until(
            lambda: (v := call("GET", url))["task_status"] == "finish" and v,
            timeout,
            what=f"task {task['task_id']} finished",
        )
    )


def records(base: str, task_id: int) -> list[dict[str, Any]]:
    found = call("GET", f"{base}/v1/tasks/{task_id}/transitions")
    for record in found:
        record["at"] = datetime.fromisoformat(record["at"])
    return list(found)


def one(found: list[dict[str, Any]], trigger: str, attempt: int) -> dict[str, Any]:
    (record,) = [r for r in found if r["trigger"] == trigger and r["attempt"] == attempt]
    return record


def waited(found: list[dict[str, Any]], attempt: int) -> float:
    """Seconds from the end of ``attempt`` (its ``fail``) to the creation of the next one."""
    ended = one(found, "fail", attempt)["at"]
    return float((one(found, "create", attempt + 1)["at"] - ended).total_seconds())


def test_a_plugin_asking_to_retry_after_2_s_is_started_again_no_sooner(node: str):
    # Given a plugin that raises Retry(after=2), with one retry allowed
    task = submit(
        node, "come_back_later", {"params": {"seconds": 2}, "process_arg": {"max_retry": 1}}
    )

    # When it has run out of attempts
    view = finished(node, task)

    # Then it ran twice, the second attempt created at least 2 s after the first ended
    assert (view["outcome"], view["attempt"], view["retry_count"]) == ("failed", 2, 1)
    found = records(node, task["task_id"])
    assert 2.0 <= waited(found, 1) < 4.0
    # And the retry's record says how long it waited and why
    assert (
        one(found, "retry", 1)["reason"]
        == "retry 1 of 1 in 2 s: its failure asked for it (retry_after)"
    )


def test_the_default_backoff_makes_the_second_retry_wait_about_twice_the_first(node: str):
    # Given a task that always fails, with two retries and the default backoff (1 s, x2, ±10%)
    task = submit(node, "fail", {"params": {"message": "down"}, "process_arg": {"max_retry": 2}})

    # When it has run out of attempts
    view = finished(node, task)

    # Then it ran three times, the first retry about 1 s after the first end, the second
    # about 2 s after the second
    assert (view["outcome"], view["attempt"]) == ("failed", 3)
    found = records(node, task["task_id"])
    first, second = waited(found, 1), waited(found, 2)
    assert 0.9 <= first < 1.6
    assert 1.8 <= second < 2.8
    assert 1.5 < second / first < 2.6
    assert one(found, "retry", 2)["reason"].startswith("retry 2 of 2 in ")
    assert one(found, "retry", 2)["reason"].endswith(": backoff 1 s * 2^1, at most 300 s, ± 10%")


def test_a_failure_its_prepare_says_cannot_be_retried_ends_the_task_after_one_attempt(node: str):
    # Given a plugin whose prepare raises TaskFailed(retryable=False), with 3 retries allowed
    task = submit(node, "impossible_target", {"process_arg": {"max_retry": 3}})

    # When it is done
    view = finished(node, task)

    # Then it made exactly one attempt and ended failed, its retries unspent
    assert (view["outcome"], view["attempt"], view["retry_count"]) == ("failed", 1, 0)
    assert view["error"]["message"] == "the target host was decommissioned"
    found = records(node, task["task_id"])
    assert [r["trigger"] for r in found][-2:] == ["fail", "finish"]
    assert not [r for r in found if r["trigger"] == "retry"]


def starts_on_time(base: str) -> None:
    """A task submitted to start in 3 s shows postpose with the time it starts, then runs
    at that time, not before and not much later."""
    # Given a start time 3 s from now
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)

    # When a task is submitted with it
    task = submit(base, "noop", {"process_arg": {"start_time": start.isoformat()}})

    # Then it shows postpose at once, with a record naming when it starts
    assert task["task_status"] == "postpose"
    submitted = records(base, task["task_id"])
    assert [(r["trigger"], r["to_state"]) for r in submitted] == [
        ("submit", "init"),
        ("postpone", "postpose"),
    ]
    assert submitted[1]["reason"] == f"waits for its start_time, {start.isoformat()}"
    # And it succeeds, its attempt created once its start time had come, within a second
    view = finished(base, task)
    assert view["outcome"] == "succeeded"
    created = one(records(base, task["task_id"]), "create", 1)["at"]
    assert start <= created < start + timedelta(seconds=1.5)


def test_a_task_with_a_future_start_time_waits_in_postpose_then_runs_at_its_time(node: str):
    starts_on_time(node)


def test_a_future_start_time_is_kept_on_time_by_the_redis_queue_too(tmp_path: Path):
    # Given a node whose queue is Redis (the Dispatcher feeds it from the database)
    redis_url = services.empty_redis_url()
    try:
        with standalone(tmp_path, redis_url=redis_url) as base:
            starts_on_time(base)
    finally:
        redis.Redis.from_url(redis_url).flushdb()
