"""The Scheduler loop's pass, against a real database, a real API and a real worker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, insert, select, update

from taskscheduler.db.models import utcnow
from taskscheduler.db.tables import TASKS
from taskscheduler.loops.checker import CheckerLoop
from taskscheduler.loops.dispatcher import DispatcherLoop
from taskscheduler.loops.scheduler import SchedulerLoop
from taskscheduler.queue.base import Ready
from taskscheduler.queue.redis import RedisQueue
from taskscheduler.tasks.start_copy import READ_TO_START, start_copy
from taskscheduler.tasks.transitions import transition
from taskscheduler.workers.capacity import WORKERS
from taskscheduler.workers.registry import Registry
from taskworker.contract.worker import Dispatch, WorkerCreateBody
from tests.processes import PYTHON, Server, call, free_port, running, wait_until
from tests.taskscheduler.loops.conftest import SECRET, Node


def scheduler(node: Node, **limits: int) -> SchedulerLoop:
    return SchedulerLoop(
        node.engine,
        node.client,
        secret=SECRET,
        node="n1",
        worker_timeout=30,
        type_limits=limits,
    )


def checker(node: Node) -> CheckerLoop:
    return CheckerLoop(
        node.engine, node.client, Registry(node.engine), node="n1", heartbeat_timeout=30
    )


def notify(node: Node, task: dict) -> None:
    url = f"{node.base}/v1/task/{task['task_type']}?task_id={task['task_id']}&action=notify"
    call("PUT", url, {"success": True, "result": {"ok": 1}}, token=task["notify_token"])


def test_one_pass_creates_prepares_and_runs_a_ready_task_on_the_worker(node, worker):
    # Given an asynchronous task that waits in init
    task = node.submit("external", {"params": {"note": "n"}})
    # When the scheduler loop makes one pass
    handled = scheduler(node).tick(utcnow())
    # Then the task runs on the worker, its attempt created before the worker was called
    assert handled == 1
    row = node.task(task["task_id"])
    assert (row.state, row.attempt, row.worker) == ("running", 1, worker.url)
    assert node.triggers(task["task_id"]) == ["submit", "create", "prepare", "run"]
    seen = node.client.status(worker.url, "external", task["task_id"], 1)
    assert seen["task_status"] == "running"


def test_a_task_on_a_held_resource_waits_in_postpose_and_is_woken_by_the_release(node, worker):
    # Given two tasks that lock the same resource
    body = {"create_info": {"resources": ["db:orders"]}}
    first, second = node.submit("external", body), node.submit("external", body)
    # When the scheduler starts them in one pass
    scheduler(node).tick(utcnow())
    # Then the first runs holding the lock and the second waits for it, without a timer
    assert node.task(first["task_id"]).state == "running"
    waiting = node.task(second["task_id"])
    assert waiting.state == "postpose"
    assert waiting.ready_at > utcnow() + timedelta(seconds=30)
    reason = node.records(second["task_id"])[-1].reason
    assert reason == f"resource db:orders is held by task:{first['task_id']}"
    # When the first finishes, its release wakes the second, which then runs with the lock
    notify(node, first)
    assert node.task(first["task_id"]).state == "finish"
    assert node.task(second["task_id"]).ready_at <= utcnow()
    checker(node).tick(utcnow())
    scheduler(node).tick(utcnow())
    assert node.task(second["task_id"]).state == "running"
    run = node.records(second["task_id"])[-1]
    assert (run.trigger, run.reason) == ("run", "locks db:orders#2")


def test_a_type_at_its_limit_waits_until_one_of_its_tasks_ends(node, worker):
    # Given at most one external task at a time, and two submitted
    first, second = node.submit("external"), node.submit("external")
    loop = scheduler(node, external=1)
    # When one pass runs
    loop.tick(utcnow())
    # Then one runs and the other waits for the slot
    assert node.task(first["task_id"]).state == "running"
    assert node.task(second["task_id"]).state == "postpose"
    assert "limit" in node.records(second["task_id"])[-1].reason
    # When the running one ends, the waiting one is woken and started
    notify(node, first)
    checker(node).tick(utcnow())
    loop.tick(utcnow())
    assert node.task(second["task_id"]).state == "running"


def test_an_unreachable_pinned_worker_postpones_the_task_with_doubling_waits(node, worker):
    # Given a task pinned to a registered worker's URL nobody listens on any more
    dead = add_dead_worker(node, "noop")
    task = node.submit("noop", {"create_info": {"http_url": dead}})
    loop, now = scheduler(node), utcnow()
    # When the loop tries it twice, the checker requeueing it in between
    loop.tick(now)
    first_wait = node.task(task["task_id"]).ready_at - now
    later = now + first_wait + timedelta(seconds=0.1)
    checker(node).tick(later)
    loop.tick(later)
    second_wait = node.task(task["task_id"]).ready_at - later
    # Then each try is a new recorded attempt, postponed, and the wait doubled
    row = node.task(task["task_id"])
    assert (row.state, row.attempt) == ("postpose", 2)
    assert (first_wait, second_wait) == (timedelta(seconds=1), timedelta(seconds=2))
    assert node.triggers(task["task_id"]).count("create") == 2


def test_a_task_pinned_to_a_worker_gone_since_is_postponed_and_sent_nowhere_else(node, worker):
    # Given a task pinned to a registered worker, that worker then deregistered, and a live
    # worker serving the type
    gone = add_dead_worker(node, "noop")
    task = node.submit("noop", {"create_info": {"http_url": gone}})
    Registry(node.engine).deregister("dead-worker")
    # When the scheduler loop makes a pass
    scheduler(node).tick(utcnow())
    # Then the task waits as one with no worker, no attempt made on any worker
    row = node.task(task["task_id"])
    assert (row.state, row.attempt, row.worker) == ("postpose", 0, None)
    assert node.triggers(task["task_id"]) == ["submit", "postpone"]
    assert node.records(task["task_id"])[-1].reason == (
        f"http_url {gone} is no registered worker's URL"
    )


def add_dead_worker(node: Node, task_type: str) -> str:
    """A registered worker with a fresh heartbeat and nothing running, so it is picked first,
    that no longer listens: a machine that died a moment ago."""
    url = f"http://127.0.0.1:{free_port()}"
    with node.engine.begin() as conn:
        conn.execute(
            insert(WORKERS).values(
                url=url, name="dead-worker", task_types={task_type: {}}, capacity=8, running=0
            )
        )
    return url


def test_a_worker_that_cannot_be_reached_means_the_next_one_in_the_same_attempt(node, worker):
    # Given the real worker busy with one task, and an idle-looking worker that is down
    busy = node.submit("sleep", {"params": {"seconds": 60}})
    scheduler(node).tick(utcnow())
    assert node.task(busy["task_id"]).state == "running"
    wait_until(lambda: running_on(node, worker.url) == 1, 10, what="worker reports running")
    dead = add_dead_worker(node, "noop")
    task = node.submit("noop")
    # When the scheduler starts the new task
    scheduler(node).tick(utcnow())
    # Then it runs on the live worker in its first attempt, the move on record
    row = node.task(task["task_id"])
    assert (row.worker, row.attempt) == (worker.url, 1)
    assert row.state in ("running", "success", "finish")
    assert node.triggers(task["task_id"])[:5] == ["submit", "create", "reassign", "prepare", "run"]
    assert node.records(task["task_id"])[1].reason == f"to {dead}"
    assert node.records(task["task_id"])[2].reason.endswith(f"attempt moved to {worker.url}")
    logs = call("GET", f"{node.base}/v1/tasks/{task['task_id']}/logs")
    moves = [line for line in logs["items"] if "moved to" in line["message"]]
    assert [(line["attempt"], line["level"]) for line in moves] == [(1, "warning")]
    assert moves[0]["message"].startswith(f"worker {dead} unavailable")
    assert moves[0]["message"].endswith(f"attempt moved to {worker.url}")


def running_on(node: Node, url: str) -> int:
    with node.engine.connect() as conn:
        return int(conn.execute(select(WORKERS.c.running).where(WORKERS.c.url == url)).scalar())


def test_with_the_redis_queue_ready_tasks_start_by_level_and_stale_items_are_dropped(
    node, worker, redis_url
):
    # Given the Redis queue, fed by the Dispatcher with three tasks, one cancelled since
    queue = RedisQueue.from_url(redis_url, consumer="n1", redeliver_after_seconds=0.2)
    low, cancelled = node.submit("noop"), node.submit("noop")
    high = node.submit("noop", {"create_info": {"important_level": 9}})
    assert DispatcherLoop(node.engine, queue).tick(utcnow()) == 3
    call("PUT", f"{node.base}/v1/task/noop?task_id={cancelled['task_id']}&action=cancel")
    loop = SchedulerLoop(
        node.engine, node.client, secret=SECRET, node="n1", worker_timeout=30, queue=queue
    )
    # When the scheduler makes a pass (handed all three items)
    assert loop.tick(utcnow()) == 3
    # Then the higher level was created first, the cancelled task left alone
    created = sorted(
        (record.id, task["task_id"])
        for task in (low, high, cancelled)
        for record in node.records(task["task_id"])
        if record.trigger == "create"
    )
    assert [task_id for _, task_id in created] == [high["task_id"], low["task_id"]]
    assert node.task(cancelled["task_id"]).outcome == "cancelled"
    # And every item was acknowledged: nothing comes back, even after the redelivery timeout
    time.sleep(0.3)
    assert queue.take(10, utcnow()) == []
    assert DispatcherLoop(node.engine, queue).tick(utcnow()) == 0


def queued_with_its_copy(node: Node, queue: RedisQueue, task: dict) -> None:
    """Queue ``task`` as the API does when it stores one: with the copy of its columns."""
    with node.engine.connect() as conn:
        row = conn.execute(select(TASKS).where(TASKS.c.id == task["task_id"])).one()
    queue.offer([Ready(row.id, row.version, row.important_level, start_copy(row))], "unused")


def test_a_task_queued_with_its_copy_starts_without_reading_its_row(node, worker, redis_url):
    # Given a task queued with the copy of its columns, as the API queues what it stores
    queue = RedisQueue.from_url(redis_url, consumer="n1", redeliver_after_seconds=0.2)
    task = node.submit("external", {"params": {"note": "from the copy"}})
    queued_with_its_copy(node, queue, task)
    loop = SchedulerLoop(
        node.engine, node.client, secret=SECRET, node="n1", worker_timeout=30, queue=queue
    )
    statements: list[str] = []
    event.listen(node.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    # When the scheduler makes a pass
    assert loop.tick(utcnow()) == 1
    # Then the task runs on the worker, its moves recorded as always, and what a start reads
    # of a task was not read
    assert node.task(task["task_id"]).state == "running"
    assert node.triggers(task["task_id"]) == ["submit", "create", "prepare", "run"]
    assert node.client.status(worker.url, "external", task["task_id"], 1)["task_status"] == (
        "running"
    )
    the_read = str(READ_TO_START.compile(node.engine)).split("FROM")[0]
    assert not [s for s in statements if s.startswith(the_read)]
    assert len(statements) > 3  # the listener saw the writes


def test_a_copy_that_went_stale_in_the_queue_is_not_started_from(node, worker, redis_url):
    # Given a task queued with its copy, whose params an operator changed afterwards
    queue = RedisQueue.from_url(redis_url, consumer="n1", redeliver_after_seconds=0.2)
    task = node.submit("shell", {"params": {"argv": ["echo", "old"]}})
    queued_with_its_copy(node, queue, task)
    url = f"{node.base}/v1/task/shell?task_id={task['task_id']}&action=change"
    call("PUT", url, {"params": {"argv": ["echo", "new"]}})
    loop = SchedulerLoop(
        node.engine, node.client, secret=SECRET, node="n1", worker_timeout=30, queue=queue
    )
    # When the scheduler is handed the stale item
    assert loop.tick(utcnow()) == 1
    # Then it starts nothing, and the task waits in line at its new version
    assert node.task(task["task_id"]).state == "init"
    assert node.triggers(task["task_id"]) == ["submit", "change"]
    # And once the Dispatcher queued that version, the task runs with the new params
    assert DispatcherLoop(node.engine, queue).tick(utcnow()) == 1
    assert loop.tick(utcnow()) == 1
    wait_until(lambda: node.task(task["task_id"]).state == "finish", 10, what="task finished")
    assert node.task(task["task_id"]).result["stdout_tail"] == "new\n"


def test_a_run_recorded_by_a_node_that_died_before_telling_the_worker_is_started_by_the_checker(
    node, worker
):
    # Given a task without retries that a node created, prepared and recorded as running on
    # the worker, then died before telling the worker to run it
    task = node.submit("noop", {"process_arg": {"max_retry": 0}})
    task_id = task["task_id"]
    transition(node.engine, task_id, "create", actor="dead-node", changes={"worker": worker.url})
    body = WorkerCreateBody(dispatch=Dispatch(task_id=task_id, attempt=1))
    node.client.create(worker.url, "noop", body)
    transition(node.engine, task_id, "prepare", actor="dead-node")
    node.client.act(worker.url, "noop", task_id, "prepare", 1)
    transition(node.engine, task_id, "run", actor="dead-node")
    # When the Checker finds it silent past the heartbeat timeout
    assert checker(node).tick(utcnow() + timedelta(seconds=31)) == 1
    # Then the worker was told to run it, and it succeeded without a failed attempt
    wait_until(lambda: node.task(task_id).state == "finish", 20, what="task finished")
    assert node.task(task_id).outcome == "succeeded"
    assert "fail" not in node.triggers(task_id)


LOCKER = '''
from taskworker import Task


class Locker(Task):
    """Locks one name while it runs."""

    task_type = "locker"

    def resources(self, params):
        return ["test:locker"]

    def run(self, ctx):
        return {"ran": True}
'''


@pytest.fixture
def locking_worker(node: Node, tmp_path: Path) -> Iterator[Server]:
    """A real worker serving ``locker``, a plugin that names a resource to lock."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "locker.py").write_text(LOCKER)
    port = free_port()
    argv = [PYTHON, "-m", "taskworker", "serve", "--bind", f"127.0.0.1:{port}"]
    argv += ["--scheduler", node.base, "--name", "locking-worker", "--plugin-dir", str(plugins)]
    url = f"http://127.0.0.1:{port}"
    env = {"TASK_WORKER_SECRET": SECRET}
    with running(argv, url=url, log_path=tmp_path / "locker.log", env=env) as server:
        wait_until(lambda: worker_types(node, url), 30, what="locking worker registered")
        yield server


def worker_types(node: Node, url: str) -> dict:
    with node.engine.connect() as conn:
        found = conn.execute(select(WORKERS.c.task_types).where(WORKERS.c.url == url)).scalar()
    return dict(found or {})


def test_a_type_that_locks_nothing_is_prepared_in_the_transaction_that_creates_it(
    node, worker, locking_worker
):
    # Given a no-op task (its plugin names no resources) and one whose plugin names one
    assert worker_types(node, worker.url)["noop"]["declares_resources"] is False
    assert worker_types(node, locking_worker.url)["locker"]["declares_resources"] is True
    plain, locking = node.submit("noop"), node.submit("locker")
    # When one pass starts both
    scheduler(node).tick(utcnow())
    # Then both ran through every step; the no-op's prepare was committed with its create,
    # while the other's came after its worker named the resource, with the lock
    for task in (plain, locking):
        wait_until(lambda t=task: node.task(t["task_id"]).state == "finish", 20, what="finished")
        assert node.triggers(task["task_id"]) == [
            "submit",
            "create",
            "prepare",
            "run",
            "succeed",
            "finish",
        ]
    create, prepare = node.records(plain["task_id"])[1:3]
    assert prepare.at == create.at
    create, prepare, run = node.records(locking["task_id"])[1:4]
    assert prepare.at > create.at
    assert run.reason == "locks test:locker#1"


def test_a_plugin_that_names_resources_it_did_not_register_waits_and_runs_with_the_lock(
    node, locking_worker
):
    # Given the locking worker's registration saying (wrongly, as after the plugin was
    # replaced) that its plugin names no resources
    types = worker_types(node, locking_worker.url)
    types["locker"] = {**types["locker"], "declares_resources": False}
    with node.engine.begin() as conn:
        conn.execute(
            update(WORKERS).where(WORKERS.c.url == locking_worker.url).values(task_types=types)
        )
    task = node.submit("locker")
    # When a pass starts it
    now = utcnow()
    scheduler(node).tick(now)
    # Then the attempt is withdrawn before it runs, the names stored for the next one
    row = node.task(task["task_id"])
    assert (row.state, row.resources) == ("postpose", ["test:locker"])
    assert node.records(task["task_id"])[-1].reason == (
        "the plugin names resources to lock: test:locker"
    )
    seen = node.client.status(locking_worker.url, "locker", task["task_id"], 1)
    assert (seen["task_status"], seen["outcome"]) == ("finish", "cancelled")
    # And the next attempt runs with the lock taken
    later = row.ready_at + timedelta(seconds=0.1)
    checker(node).tick(later)
    scheduler(node).tick(later)
    wait_until(lambda: node.task(task["task_id"]).state == "finish", 20, what="finished")
    records = node.records(task["task_id"])
    assert [r.trigger for r in records].count("create") == 2
    assert [r.reason for r in records if r.trigger == "run"] == ["locks test:locker#1"]
