"""The Scheduler loop's pass, against a real database, a real API and a real worker."""

from __future__ import annotations

from datetime import timedelta

from taskscheduler.db.models import utcnow
from taskscheduler.loops.checker import CheckerLoop
from taskscheduler.loops.scheduler import SchedulerLoop
from taskscheduler.registry import Registry
from tests.processes import call, free_port
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
    # Given a task pinned to a worker URL nobody listens on
    dead = f"http://127.0.0.1:{free_port()}"
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
