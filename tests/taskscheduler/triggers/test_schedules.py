"""Fire times: cron in a time zone across both 2026 DST changes, intervals, lists, misfires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from taskscheduler.triggers import due, schedule_for
from taskscheduler.triggers.base import MAX_FIRES_PER_PASS, watch_since
from taskworker.errors import InvalidInput

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def local(times: list[datetime]) -> list[str]:
    return [t.astimezone(BERLIN).isoformat() for t in times]


def test_cron_in_berlin_across_the_spring_forward_change_of_2026():
    # Given a daily 02:30 job in Berlin; on 2026-03-29 clocks jump from 02:00 to 03:00
    schedule = schedule_for(cron="30 2 * * *", timezone="Europe/Berlin")
    # Then the missing 02:30 fires once, right after the gap, and local time holds otherwise
    assert local(schedule.upcoming(berlin(2026, 3, 27), 4)) == [
        "2026-03-27T02:30:00+01:00",
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]


def test_cron_in_berlin_across_the_fall_back_change_of_2026():
    # Given the same job; on 2026-10-25 clocks go back from 03:00 to 02:00 (02:30 twice)
    schedule = schedule_for(cron="30 2 * * *", timezone="Europe/Berlin")
    # Then it fires once that day, at the first 02:30, and at 02:30 winter time after
    assert local(schedule.upcoming(berlin(2026, 10, 23), 4)) == [
        "2026-10-23T02:30:00+02:00",
        "2026-10-24T02:30:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]


def test_an_hourly_cron_keeps_real_hours_across_the_fall_back():
    schedule = schedule_for(cron="0 * * * *", timezone="Europe/Berlin")
    fires = schedule.upcoming(datetime(2026, 10, 24, 23, 30, tzinfo=UTC), 4)
    assert [f.isoformat() for f in fires] == [
        "2026-10-25T00:00:00+00:00",
        "2026-10-25T01:00:00+00:00",
        "2026-10-25T02:00:00+00:00",
        "2026-10-25T03:00:00+00:00",
    ]


def test_six_fields_take_seconds_first():
    schedule = schedule_for(cron="*/20 * * * * *")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert [t.second for t in schedule.upcoming(start, 3)] == [20, 40, 0]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * *"}, "cron"),
        ({"cron": "0 0 * * *", "timezone": "Mars/Olympus"}, "timezone"),
        ({"interval_second": 0.1, "anchor": datetime(2026, 1, 1, tzinfo=UTC)}, "interval_second"),
        ({"times": ["2026-01-01T00:00:00"]}, "times[0]"),
        ({"times": ["2026-01-01T00:00:00Z", "tomorrow"]}, "times[1]"),
        ({"cron": "0 0 * * *", "interval_second": 60}, "cron"),
        ({}, "cron"),
    ],
)
def test_a_bad_definition_names_its_field(kwargs, field):
    with pytest.raises(InvalidInput) as error:
        schedule_for(**kwargs)
    assert error.value.field == field


def test_intervals_count_from_their_anchor_and_never_drift():
    anchor = datetime(2026, 1, 1, 12, 0, 0, 500000, tzinfo=UTC)
    schedule = schedule_for(interval_second=60, anchor=anchor)
    late = anchor + timedelta(minutes=5, seconds=59)
    assert schedule.next_after(late) == anchor + timedelta(minutes=6)
    assert schedule.next_after(anchor - timedelta(days=1)) == anchor


def test_a_list_of_times_fires_each_once_in_order_then_stops():
    schedule = schedule_for(times=["2026-05-01T10:00:00+02:00", "2026-04-01T08:00:00Z"])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert [t.isoformat() for t in schedule.upcoming(start, 5)] == [
        "2026-04-01T08:00:00+00:00",
        "2026-05-01T08:00:00+00:00",
    ]


def test_fire_once_after_downtime_creates_only_the_first_missed_time():
    # Given a trigger every minute whose shard nobody watched until 00:10:30
    schedule = schedule_for(interval_second=60, anchor=datetime(2026, 1, 1, tzinfo=UTC))
    now = datetime(2026, 1, 1, 0, 10, 30, tzinfo=UTC)
    # When its fire times from 00:01 are looked at as the watch begins
    fires, next_fire = due(schedule, datetime(2026, 1, 1, 0, 1, tzinfo=UTC), now, "fire_once", now)
    # Then only 00:01 fires (late), and the trigger waits for 00:11
    assert fires == [datetime(2026, 1, 1, 0, 1, tzinfo=UTC)]
    assert next_fire == datetime(2026, 1, 1, 0, 11, tzinfo=UTC)


def test_skip_after_downtime_creates_none_of_the_old_times():
    schedule = schedule_for(interval_second=300, anchor=datetime(2026, 1, 1, tzinfo=UTC))
    now = datetime(2026, 1, 1, 1, 2, 0, tzinfo=UTC)
    fires, next_fire = due(schedule, datetime(2026, 1, 1, 0, 5, tzinfo=UTC), now, "skip", now)
    assert fires == []
    assert next_fire == datetime(2026, 1, 1, 1, 5, tzinfo=UTC)


@pytest.mark.parametrize("downtime", [4, 12, 59, 90, 3600])
@pytest.mark.parametrize(("policy", "expected"), [("skip", 0), ("fire_once", 1)])
def test_after_any_downtime_skip_fires_none_and_fire_once_one(
    downtime: int, policy: str, expected: int
):
    # Given a */3 seconds trigger whose every node was down for `downtime` seconds
    schedule = schedule_for(cron="*/3 * * * * *", anchor=datetime(2026, 1, 1, tzinfo=UTC))
    stopped = datetime(2026, 1, 1, 0, 0, 1, 500_000, tzinfo=UTC)
    restarted = stopped + timedelta(seconds=downtime)
    # When the restarted node's first pass looks at it, its watch beginning now
    fires, next_fire = due(
        schedule, datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC), restarted, policy, restarted
    )
    # Then skip creates nothing and fire_once one instance, however short or long the downtime
    assert len(fires) == expected
    assert next_fire is not None and next_fire > restarted


def test_a_time_due_just_now_fires_under_either_policy():
    schedule = schedule_for(interval_second=60, anchor=datetime(2026, 1, 1, tzinfo=UTC))
    due_at = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    for policy in ("fire_once", "skip"):
        fires, next_fire = due(schedule, due_at, due_at + timedelta(seconds=2), policy, due_at)
        assert fires == [due_at]
        assert next_fire == due_at + timedelta(minutes=1)


def test_nothing_is_due_before_the_next_fire_time():
    schedule = schedule_for(interval_second=60, anchor=datetime(2026, 1, 1, tzinfo=UTC))
    next_fire = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    now = next_fire - timedelta(seconds=1)
    assert due(schedule, next_fire, now, "fire_once", now) == ([], next_fire)


def test_times_due_while_the_shard_was_watched_all_fire_however_late():
    # Given a trigger every second whose shard has been watched since 00:00:05 (a failover,
    # a slow pass), and a pass two minutes after its next fire time
    schedule = schedule_for(interval_second=1, anchor=datetime(2026, 1, 1, tzinfo=UTC))
    start = datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    watched = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    for policy in ("fire_once", "skip"):
        fires, next_fire = due(schedule, start, start + timedelta(seconds=120.5), policy, watched)
        # Then every one of its 121 fire times fires, under either policy
        assert fires == [start + timedelta(seconds=s) for s in range(121)]
        assert next_fire == start + timedelta(seconds=121)


def test_after_downtime_fire_once_adds_one_catch_up_to_the_times_since_the_restart():
    schedule = schedule_for(interval_second=1, anchor=datetime(2026, 1, 1, tzinfo=UTC))
    start = datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    restarted = start + timedelta(seconds=30.5)
    fires, _ = due(schedule, start, restarted + timedelta(seconds=2), "fire_once", restarted)
    assert fires == [start + timedelta(seconds=s) for s in (0, 31, 32)]
    fires, _ = due(schedule, start, restarted + timedelta(seconds=2), "skip", restarted)
    assert fires == [start + timedelta(seconds=s) for s in (31, 32)]


def test_the_catch_up_is_the_first_missed_time_however_many_were_missed():
    # Given a trigger every second and a downtime of two hours (7,200 missed times)
    schedule = schedule_for(interval_second=1, anchor=datetime(2026, 1, 1, tzinfo=UTC))
    start = datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)
    restarted = start + timedelta(hours=2, seconds=0.5)
    fires, next_fire = due(schedule, start, restarted, "fire_once", restarted)
    assert fires == [start]
    assert next_fire == start + timedelta(hours=2, seconds=1)


def test_on_time_fires_past_a_passs_limit_stay_due_for_the_next_pass():
    schedule = schedule_for(interval_second=1, anchor=datetime(2026, 1, 1, tzinfo=UTC))
    start = datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)
    now = start + timedelta(seconds=MAX_FIRES_PER_PASS + 10)
    fires, next_fire = due(schedule, start, now, "skip", start)
    assert len(fires) == MAX_FIRES_PER_PASS
    assert next_fire == start + timedelta(seconds=MAX_FIRES_PER_PASS)
    more, following = due(schedule, next_fire, now, "skip", start)
    assert len(more) == 11 and following == now + timedelta(seconds=1)


LEASE = 10.0
T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("since", "watched_until", "taken_at", "expected", "what"),
    [
        (T0, T0 + timedelta(seconds=50), T0 + timedelta(seconds=62), T0, "kill -9, takeover"),
        (T0, T0 + timedelta(seconds=50), T0 + timedelta(seconds=70), T0, "two lease periods"),
        (T0, T0 + timedelta(seconds=50), T0 + timedelta(seconds=71), None, "longer: downtime"),
        (T0, T0 + timedelta(seconds=50), T0 + timedelta(seconds=140), None, "90 s downtime"),
        (None, None, T0, None, "a shard nobody ever watched"),
    ],
)
def test_a_takeover_within_two_lease_periods_goes_on_watching_and_a_later_one_starts_anew(
    since, watched_until, taken_at, expected, what
):
    assert watch_since(since, watched_until, taken_at, LEASE) == (expected or taken_at), what
