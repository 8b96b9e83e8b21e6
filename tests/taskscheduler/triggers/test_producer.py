"""The Producer on a real database: each fire time once, the overlap and misfire policies,
permanent tasks restarted with a growing backoff, and two owners that never double."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from taskscheduler.db.tables import TASKS, TRIGGERS
from taskscheduler.locks import LocalLocks
from taskscheduler.loops.producer import ProducerLoop
from taskscheduler.tasks.transitions import transition
from tests.taskscheduler.api.harness import Api, build_api


@pytest.fixture
def api(db_url: str, engine: Engine) -> Api:
    return build_api(db_url, engine)


def producer(api: Api, node: str = "n1") -> ProducerLoop:
    """A Producer owning every shard (a lock backend of its own)."""
    return ProducerLoop(api.engine, LocalLocks(), node=node, lease_seconds=10)


def add(api: Api, **more: Any) -> dict[str, Any]:
    body = {
        "name": f"t{threading.get_ident()}-{datetime.now().timestamp()}",
        "interval_second": 60,
        "template": {"create_info": {"task_type": "sleep"}, "params": {"seconds": 1}},
        **more,
    }
    created = api.call("POST", "/v1/triggers", json=body)
    assert created.status_code == 201, created.text
    return dict(created.json)


def instances(api: Api, trigger_id: int) -> list[Any]:
    with api.engine.connect() as conn:
        return list(
            conn.execute(
                select(TASKS).where(TASKS.c.trigger_id == trigger_id).order_by(TASKS.c.fire_time)
            )
        )


def first_fire(trigger: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(trigger["next_fire_time"])


def end(api: Api, task_id: int, outcome: str = "succeeded") -> None:
    if outcome == "succeeded":
        steps = ["create", "prepare", "run", "succeed"]
    else:
        steps = ["create", "prepare", "run", "fail"]
    for step in steps:
        transition(api.engine, task_id, step, actor="test")
    transition(api.engine, task_id, "finish", actor="test", outcome=outcome)


def test_each_fire_time_makes_one_instance_and_nothing_before_it(api: Api):
    trigger = add(api)
    first, loop = first_fire(trigger), producer(api)
    assert loop.tick(first - timedelta(seconds=1)) == 0
    loop.tick(first + timedelta(seconds=0.5))
    loop.tick(first + timedelta(seconds=0.7))
    made = instances(api, trigger["trigger_id"])
    assert [(t.fire_time, t.task_type, t.params, t.state) for t in made] == [
        (first, "sleep", {"seconds": 1}, "init")
    ]
    end(api, made[0].id)
    loop.tick(first + timedelta(seconds=60.2))
    assert [t.fire_time for t in instances(api, trigger["trigger_id"])] == [
        first,
        first + timedelta(seconds=60),
    ]


def test_skip_drops_fire_times_while_an_instance_runs_and_allow_does_not(api: Api):
    skipping, allowing = add(api, name="skip"), add(api, name="allow", overlap="allow")
    loop = producer(api)
    for trigger in (skipping, allowing):
        first = first_fire(trigger)
        loop.tick(first + timedelta(seconds=0.1))
        loop.tick(first + timedelta(seconds=60.1))  # the first instance is still unfinished
    assert len(instances(api, skipping["trigger_id"])) == 1
    assert len(instances(api, allowing["trigger_id"])) == 2


def test_queue_fires_the_waiting_time_late_once_the_instance_ended(api: Api):
    trigger = add(api, overlap="queue")
    first, loop = first_fire(trigger), producer(api)
    loop.tick(first + timedelta(seconds=0.1))
    loop.tick(first + timedelta(seconds=60.1))
    assert len(instances(api, trigger["trigger_id"])) == 1
    end(api, instances(api, trigger["trigger_id"])[0].id)
    loop.tick(first + timedelta(seconds=75))
    assert [t.fire_time for t in instances(api, trigger["trigger_id"])] == [
        first,
        first + timedelta(seconds=60),
    ]


@pytest.mark.parametrize(("misfire", "expected"), [("fire_once", 1), ("skip", 0)])
def test_after_downtime_fire_once_fires_the_first_missed_time_and_skip_none(
    api: Api, misfire: str, expected: int
):
    trigger = add(api, misfire=misfire, interval_second=300)
    first = first_fire(trigger)
    producer(api).tick(first + timedelta(minutes=20, seconds=100))  # five fire times missed
    made = instances(api, trigger["trigger_id"])
    assert len(made) == expected
    if made:
        assert made[0].fire_time == first
    with api.engine.connect() as conn:
        following = conn.execute(
            select(TRIGGERS.c.next_fire_time).where(TRIGGERS.c.id == trigger["trigger_id"])
        ).scalar_one()
    assert following == first + timedelta(minutes=25)


def test_two_owners_at_once_never_create_a_fire_time_twice(api: Api):
    triggers = [add(api, name=f"race-{i}", interval_second=30) for i in range(20)]
    latest = max(first_fire(t) for t in triggers)
    loops = [producer(api, "a"), producer(api, "b")]
    for round_ in range(3):
        now = latest + timedelta(seconds=30 * round_ + 0.5)
        threads = [threading.Thread(target=loop.tick, args=(now,)) for loop in loops]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for trigger in triggers:  # let the next fire time come: skip would hold it back
            for task in instances(api, trigger["trigger_id"]):
                if task.state != "finish":
                    transition(api.engine, task.id, "cancel", actor="test")
    for trigger in triggers:
        times = [t.fire_time for t in instances(api, trigger["trigger_id"])]
        assert len(times) == len(set(times)) >= 3


def test_a_permanent_trigger_keeps_one_instance_and_backs_off_after_failures(api: Api):
    trigger = add(api, kind="permanent", interval_second=None)
    loop, now = producer(api), first_fire(trigger) + timedelta(seconds=0.1)
    loop.tick(now)
    loop.tick(now + timedelta(seconds=2))
    first = instances(api, trigger["trigger_id"])
    assert len(first) == 1  # one live instance, never two
    end(api, first[0].id, "failed")
    finished = instances(api, trigger["trigger_id"])[0].finished_at

    def pass_at(seconds: float) -> int:
        with api.engine.begin() as conn:  # the check is due at once
            conn.execute(update(TRIGGERS).values(next_fire_time=finished))
        loop.tick(finished + timedelta(seconds=seconds))
        return len(instances(api, trigger["trigger_id"]))

    assert pass_at(0.5) == 1  # one failure: 1 s backoff
    assert pass_at(1.5) == 2
    end(api, instances(api, trigger["trigger_id"])[-1].id, "failed")
    finished = instances(api, trigger["trigger_id"])[-1].finished_at
    assert pass_at(1.5) == 2  # two failures in a row: 2 s
    assert pass_at(2.5) == 3
    end(api, instances(api, trigger["trigger_id"])[-1].id)  # a success resets the backoff
    finished = instances(api, trigger["trigger_id"])[-1].finished_at
    assert pass_at(0.1) == 4
    with api.engine.connect() as conn:
        failures = conn.execute(select(TRIGGERS.c.failures)).scalar_one()
    assert failures == 0


def every_three_seconds(api: Api, misfire: str) -> tuple[dict[str, Any], datetime]:
    trigger = add(
        api, name=f"every-3-{misfire}", interval_second=3, overlap="allow", misfire=misfire
    )
    return trigger, first_fire(trigger)


@pytest.mark.parametrize("misfire", ["skip", "fire_once"])
def test_a_node_taking_the_shards_over_within_the_lease_fires_every_time_of_the_gap(
    api: Api, misfire: str
):
    # Given node a watching the shards (lease 10 s) until just before the first fire time
    trigger, first = every_three_seconds(api, misfire)
    producer(api, "a").tick(first - timedelta(seconds=1))
    # When a dies and node b takes the shards over 15.5 s later (the lease ran out, b came)
    producer(api, "b").tick(first + timedelta(seconds=14.5))
    # Then every fire time of the gap has its instance, under either policy
    assert [t.fire_time for t in instances(api, trigger["trigger_id"])] == [
        first + timedelta(seconds=s) for s in (0, 3, 6, 9, 12)
    ]


@pytest.mark.parametrize(("misfire", "expected"), [("skip", []), ("fire_once", [0])])
def test_after_every_node_was_down_skip_fires_nothing_missed_and_fire_once_one_time(
    api: Api, misfire: str, expected: list[int]
):
    # Given node a watching the shards until just before the first fire time
    trigger, first = every_three_seconds(api, misfire)
    producer(api, "a").tick(first - timedelta(seconds=1))
    # When nothing watched them for 90 s (thirty fire times), then node b starts
    loop = producer(api, "b")
    loop.tick(first + timedelta(seconds=89))
    missed = [t.fire_time for t in instances(api, trigger["trigger_id"])]
    loop.tick(first + timedelta(seconds=93.1))
    # Then skip made nothing of them and fire_once only the first, late; b fires on from then
    assert missed == [first + timedelta(seconds=s) for s in expected]
    assert [t.fire_time for t in instances(api, trigger["trigger_id"])] == [
        first + timedelta(seconds=s) for s in (*expected, 90, 93)
    ]


def test_a_takeover_carries_the_watch_on_so_a_downtime_before_it_stays_missed(api: Api):
    # Given a downtime of 90 s, ended by node a taking the shards, which died before its pass
    trigger, first = every_three_seconds(api, "skip")
    producer(api, "a").tick(first - timedelta(seconds=1))
    a = producer(api, "a")
    a.watch.update(a.owned(), first + timedelta(seconds=89))
    # When node b takes the shards over within the lease
    producer(api, "b").tick(first + timedelta(seconds=93.1))
    # Then b fires what fell due since the downtime ended, and nothing of the downtime
    assert [t.fire_time for t in instances(api, trigger["trigger_id"])] == [
        first + timedelta(seconds=s) for s in (90, 93)
    ]


def test_a_retired_trigger_fires_no_more_and_its_instances_keep_their_link(api: Api):
    # Given a trigger that made an instance
    trigger, first = every_three_seconds(api, "skip")
    loop = producer(api)
    loop.tick(first - timedelta(seconds=1))
    loop.tick(first + timedelta(seconds=0.1))
    made = instances(api, trigger["trigger_id"])
    assert len(made) == 1
    # When an admin retires it
    trigger_id = trigger["trigger_id"]
    assert api.call("DELETE", f"/v1/triggers/{trigger_id}", role="admin").status_code == 204
    loop.tick(first + timedelta(seconds=30.1))
    # Then it made nothing more, and its instance still names it
    assert [t.id for t in instances(api, trigger_id)] == [t.id for t in made]
    shown = api.call("GET", f"/v1/triggers/{trigger_id}", role="viewer").json
    assert shown["retired_at"] and shown["next_fire_times"] == []
    assert shown["enabled"] is False and shown["next_fire_time"] is None


def test_a_pass_that_read_a_trigger_before_it_was_retired_fires_nothing(api: Api):
    # Given a Producer pass that has read a due trigger and is about to write its fire time
    trigger, first = every_three_seconds(api, "skip")
    loop = producer(api)
    loop.tick(first - timedelta(seconds=1))
    write = loop._write

    def retired_meanwhile(fires: Any) -> int:
        path = f"/v1/triggers/{trigger['trigger_id']}"
        assert api.call("DELETE", path, role="admin").status_code == 204
        return write(fires)

    loop._write = retired_meanwhile  # type: ignore[method-assign]
    # When the trigger is retired in between
    loop.tick(first + timedelta(seconds=0.1))
    # Then the pass creates no instance of it
    assert instances(api, trigger["trigger_id"]) == []


@pytest.mark.parametrize(
    ("misfire", "pause", "expected"),
    [("skip", 14.5, [0, 3, 6, 9, 12]), ("skip", 89, []), ("fire_once", 89, [0])],
)
def test_a_node_that_did_not_look_for_longer_than_two_leases_watched_nothing_meanwhile(
    api: Api, misfire: str, pause: float, expected: list[int]
):
    # Given one node holding the shards, whose passes stop just before the first fire time
    trigger, first = every_three_seconds(api, misfire)
    loop = producer(api)
    loop.tick(first - timedelta(seconds=1))
    # When its next pass comes `pause` seconds later (stalled, suspended), its lease still held
    loop.tick(first + timedelta(seconds=pause - 1))
    # Then a pause within two lease periods loses nothing, a longer one is a downtime
    assert [t.fire_time for t in instances(api, trigger["trigger_id"])] == [
        first + timedelta(seconds=s) for s in expected
    ]
