"""How long a failed task waits before each retry: the one decision every retrying path uses."""

from __future__ import annotations

import pytest

from taskscheduler.tasks.settle import retry_wait, retryable
from taskworker.contract.fields import MAX_SECONDS


def no_jitter(low: float, high: float) -> float:
    return 0.0


def test_the_default_backoff_starts_at_1_s_and_doubles_up_to_300_s():
    # Given a task stored without a backoff of its own
    # When its retries 0 to 9 are decided, without jitter
    waits = [retry_wait(None, n, {"message": "down"}, spread=no_jitter)[0] for n in range(10)]
    # Then each waits twice the one before, from 1 s, never past 300 s
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]


def test_jitter_spreads_each_wait_within_its_fraction():
    # Given the default backoff's jitter of 10 %
    # When the first retry is decided with the spread at either end of its range
    shortest, _ = retry_wait(None, 0, None, spread=lambda low, high: low)
    longest, _ = retry_wait(None, 0, None, spread=lambda low, high: high)
    # Then the wait lies 10 % either side of 1 s
    assert (shortest, longest) == pytest.approx((0.9, 1.1))
    # And a real spread stays within those bounds
    assert all(0.9 <= retry_wait(None, 0, None)[0] <= 1.1 for _ in range(200))


def test_a_task_s_own_backoff_is_followed_and_its_record_says_so():
    # Given a backoff of 5 s, tripled, at most 60 s, without jitter
    backoff = {"initial_second": 5, "factor": 3, "max_second": 60, "jitter": 0}
    # When its first three retries are decided
    decided = [retry_wait(backoff, n, None) for n in range(3)]
    # Then they wait 5, 15 and 45 s, and the reason names the rule
    assert [wait for wait, _ in decided] == [5, 15, 45]
    assert decided[2][1] == "backoff 5 s * 3^2, at most 60 s, ± 0%"
    # And the fourth is held at the maximum
    assert retry_wait(backoff, 3, None)[0] == 60


def test_retry_after_overrides_the_backoff_exactly_as_asked():
    # Given a failure that asks to be retried after 7.5 s (a plugin's Retry(after=7.5))
    error = {"message": "come back later", "retry_after": 7.5}
    # When its fifth retry is decided, whatever the backoff
    wait, why = retry_wait({"initial_second": 1, "jitter": 1}, 4, error)
    # Then it waits 7.5 s, with no jitter, and says why
    assert (wait, why) == (7.5, "its failure asked for it (retry_after)")


@pytest.mark.parametrize(
    ("asked", "waits"),
    [(-5, 0.0), (0, 0.0), (1e12, MAX_SECONDS), (float("inf"), MAX_SECONDS)],
)
def test_retry_after_is_bounded_like_any_wait(asked: float, waits: float):
    # Given a failure asking for a wait below 0 or beyond 366 days
    # When its retry is decided
    wait, _ = retry_wait(None, 0, {"retry_after": asked})
    # Then the wait is held within 0 and 366 days
    assert wait == waits


@pytest.mark.parametrize("asked", ["5", True, None, float("nan"), [5]])
def test_a_retry_after_that_is_not_a_number_of_seconds_leaves_the_backoff(asked: object):
    # Given a failure whose retry_after is not a number of seconds
    # When its first retry is decided without jitter
    wait, why = retry_wait(None, 0, {"retry_after": asked}, spread=no_jitter)
    # Then the backoff decides it
    assert (wait, why.startswith("backoff")) == (1, True)


def test_a_stored_backoff_that_no_longer_passes_the_bounds_falls_back_to_the_defaults():
    # Given a stored backoff outside the bounds (written by hand into the database)
    broken = {"initial_second": -1, "factor": 1000}
    # When a retry is decided
    wait, _ = retry_wait(broken, 0, None, spread=no_jitter)
    # Then the defaults decide it, and the retry still happens
    assert wait == 1


def test_the_largest_backoff_cannot_overflow():
    # Given the largest backoff the bounds allow, at the hundredth retry
    backoff = {"initial_second": MAX_SECONDS, "factor": 10, "max_second": MAX_SECONDS}
    # When it is decided
    wait, _ = retry_wait(backoff, 100, None, spread=lambda low, high: high)
    # Then it is 366 days, no more
    assert wait == MAX_SECONDS


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"message": "x", "retryable": False}, False),
        ({"message": "x", "retryable": True}, True),
        ({"message": "x"}, True),
        ("a plain string", True),
        (None, True),
    ],
)
def test_a_failure_is_retryable_unless_it_says_it_is_not(error: object, expected: bool):
    assert retryable(error) is expected
