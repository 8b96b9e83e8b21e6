"""Several scheduler nodes, several workers, one MariaDB: every task ends once, right.

The proof is the transition records: per (task, attempt) one ``create`` and at most one
``run``; per task one move into ``finish``; and, for tasks sharing a resource, running
intervals (``run`` to the move that ended the run) that never overlap.
"""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
import redis

from tests.e2e.cluster import cluster
from tests.processes import wait_until

#: What is submitted, per kind, and how each kind must end.
MIX = {
    "noop": ({}, "succeeded"),
    "sleep": ({"params": {"seconds": 0.05}}, "succeeded"),
    "shell": ({"params": {"argv": ["true"]}}, "succeeded"),
    "fail": ({"params": {"message": "no"}, "process_arg": {"max_retry": 1}}, "failed"),
}
LOCKED = {"params": {"seconds": 0.2}, "create_info": {"resources": ["db:shared"]}}


def running_intervals(records, task_ids):
    """(start, end) of every run of the given tasks: its ``run`` record to the next record."""
    intervals, started = [], {}
    for record in records:
        if record.task_id not in task_ids:
            continue
        if record.trigger == "run":
            started[record.task_id] = record.at
        elif record.task_id in started:
            intervals.append((started.pop(record.task_id), record.at))
    return sorted(intervals)


@pytest.mark.parametrize("database", ["mariadb", "embedded"])
def test_two_nodes_and_two_workers_run_a_few_hundred_mixed_tasks_each_to_its_outcome_once(
    tmp_path, database
):
    with cluster(tmp_path, embedded=database == "embedded") as site:
        # Given two nodes behind a load balancer, which alternates between them
        expected, locked = {}, set()
        for index in range(240):
            kind = list(MIX)[index % len(MIX)]
            body, outcome = MIX[kind]
            expected[site.submit(index, kind, body)] = (kind, outcome)
        for index in range(8):
            task_id = site.submit(index, "sleep", LOCKED)
            expected[task_id] = ("sleep", "succeeded")
            locked.add(task_id)
        # When they have all been worked off
        site.wait_all_finished(60)
        # Then every task ended as its kind must, exactly once, each attempt run once
        site.assert_outcomes(expected)
        site.assert_nothing_twice()
        records = site.records()
        attempts = Counter(r.task_id for r in records if r.trigger == "create")
        assert {attempts[t] for t, (kind, _) in expected.items() if kind == "fail"} == {2}
        # And the tasks on one resource never ran at the same time
        intervals = running_intervals(records, locked)
        assert len(intervals) == len(locked)
        for (_, end), (start, _) in itertools.pairwise(intervals):
            assert end <= start, f"overlapping runs on db:shared: {intervals}"
        # And both nodes did part of the work
        actors = {r.actor.split(":")[1] for r in records if r.trigger == "create"}
        assert actors == {"node0", "node1"}


@pytest.mark.parametrize("queue", ["database", "redis"])
def test_a_node_killed_mid_dispatch_loses_nothing_and_runs_nothing_twice(tmp_path, queue, request):
    redis_url = request.getfixturevalue("redis_url") if queue == "redis" else None
    with cluster(tmp_path, redis_url=redis_url) as site:
        # Given a stream of tasks without retries, that node 0 is busy dispatching
        expected = {}
        for _ in range(150):
            body = {"params": {"seconds": 0.1}, "process_arg": {"max_retry": 0}}
            expected[site.submit(0, "sleep", body)] = ("sleep", "succeeded")
        wait_until(
            lambda: any(r.actor == "scheduler:node0" for r in site.records()),
            30,
            interval=0.05,
            what="node 0 dispatching",
        )
        # When node 0 dies without a word while tasks are still waiting
        site.nodes[0].kill()
        left = site.unfinished()
        # Then node 1 takes over: every task succeeds, though none may be retried, each
        # attempt created and run once
        site.wait_all_finished(60)
        assert left > 0, "node 0 finished everything before it was killed"
        site.assert_outcomes(expected)
        site.assert_nothing_twice()


def test_with_the_redis_queue_a_flushdb_mid_run_loses_no_task_and_runs_none_twice(
    tmp_path, redis_url
):
    with cluster(tmp_path, redis_url=redis_url) as site:
        # Given two nodes sharing MariaDB and a Redis queue, and a few hundred mixed tasks
        expected = {}
        for index in range(240):
            kind = list(MIX)[index % len(MIX)]
            body, outcome = MIX[kind]
            expected[site.submit(index, kind, body)] = (kind, outcome)
        # When Redis loses everything while they are being worked off
        wait_until(lambda: site.unfinished() < 200, 30, what="the run under way")
        client = redis.Redis.from_url(redis_url)
        assert client.dbsize() > 0, "the queue was not in Redis"
        client.flushdb()
        left = site.unfinished()
        for index in range(40):
            kind = list(MIX)[index % len(MIX)]
            body, outcome = MIX[kind]
            expected[site.submit(index, kind, body)] = (kind, outcome)
        # Then every task still ends as its kind must, exactly once, each attempt run once
        site.wait_all_finished(90)
        assert left > 0, "everything finished before Redis lost its data"
        site.assert_outcomes(expected)
        site.assert_nothing_twice()
        # And the queue was built at start, rebuilt after the loss, and served both nodes
        assert client.exists("taskscheduler:queue:epoch")
        client.close()
        logs = "".join(node.log() for node in site.nodes)
        assert logs.count("rebuilt from the database") >= 2
        actors = {r.actor.split(":")[1] for r in site.records() if r.trigger == "create"}
        assert actors == {"node0", "node1"}
