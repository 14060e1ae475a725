"""The shared exponential backoff every retry loop waits by."""

from __future__ import annotations

import pytest

from classpulse_core.backoff import Backoff, Retries

pytestmark = pytest.mark.unit


def test_waits_double_from_the_first_up_to_the_cap() -> None:
    backoff = Backoff(initial_s=0.5, max_s=3.0)
    assert [backoff.delay_s(attempt) for attempt in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_cap_below_the_first_wait_caps_it() -> None:
    assert Backoff(initial_s=0.5, max_s=0.001).delay_s(1) == 0.001


def test_jitter_stays_within_its_bounds_and_varies() -> None:
    backoff = Backoff(initial_s=1.0, max_s=8.0, jitter=0.2)
    delays = [backoff.delay_s(3) for _ in range(200)]
    assert all(3.2 <= delay <= 4.8 for delay in delays)
    assert len(set(delays)) > 1


def test_retrying_for_days_does_not_overflow() -> None:
    assert Backoff(initial_s=0.5, max_s=30.0).delay_s(100_000) == 30.0


def test_retries_count_failures_in_a_row_until_reset() -> None:
    retries = Retries(Backoff(initial_s=1.0, max_s=10.0))
    assert [retries.failed() for _ in range(5)] == [1.0, 2.0, 4.0, 8.0, 10.0]
    retries.reset()
    assert retries.failed() == 1.0
