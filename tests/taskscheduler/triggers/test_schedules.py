"""Fire times: cron in a time zone across both 2026 DST changes, intervals, lists, misfires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from taskscheduler.triggers import due, schedule_for
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


def test_fire_once_after_downtime_creates_only_the_latest_missed_time():
    schedule = schedule_for(interval_second=60, anchor=datetime(2026, 1, 1, tzinfo=UTC))
    now = datetime(2026, 1, 1, 0, 10, 30, tzinfo=UTC)
    fires, next_fire = due(schedule, datetime(2026, 1, 1, 0, 1, tzinfo=UTC), now, "fire_once")
    assert fires == [datetime(2026, 1, 1, 0, 10, tzinfo=UTC)]
    assert next_fire == datetime(2026, 1, 1, 0, 11, tzinfo=UTC)


def test_skip_after_downtime_creates_none_of_the_old_times():
    schedule = schedule_for(interval_second=300, anchor=datetime(2026, 1, 1, tzinfo=UTC))
    now = datetime(2026, 1, 1, 1, 2, 0, tzinfo=UTC)
    fires, next_fire = due(schedule, datetime(2026, 1, 1, 0, 5, tzinfo=UTC), now, "skip")
    assert fires == []
    assert next_fire == datetime(2026, 1, 1, 1, 5, tzinfo=UTC)


def test_a_time_due_just_now_fires_under_either_policy():
    schedule = schedule_for(interval_second=60, anchor=datetime(2026, 1, 1, tzinfo=UTC))
    due_at = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    for policy in ("fire_once", "skip"):
        fires, next_fire = due(schedule, due_at, due_at + timedelta(seconds=2), policy)
        assert fires == [due_at]
        assert next_fire == due_at + timedelta(minutes=1)


def test_nothing_is_due_before_the_next_fire_time():
    schedule = schedule_for(interval_second=60, anchor=datetime(2026, 1, 1, tzinfo=UTC))
    next_fire = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    assert due(schedule, next_fire, next_fire - timedelta(seconds=1), "fire_once") == (
        [],
        next_fire,
    )


def test_times_missed_by_a_failover_all_fire_under_either_policy():
    schedule = schedule_for(interval_second=1, anchor=datetime(2026, 1, 1, tzinfo=UTC))
    start = datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    for policy in ("fire_once", "skip"):
        fires, next_fire = due(schedule, start, start + timedelta(seconds=4.5), policy)
        assert fires == [start + timedelta(seconds=s) for s in range(5)]
        assert next_fire == start + timedelta(seconds=5)
