"""Bounded logging of what peers cause."""

from __future__ import annotations

import pytest

from manta._private.common.ratelimit import RateLimitedLog, RequestBuckets


def test_refusal_log_is_rate_limited_and_reports_what_it_dropped() -> None:
    now = [0.0]
    log = RateLimitedLog(lambda: now[0], per_window=3, window_s=60)
    written = [line for i in range(10) for line in log.lines(f"refused {i}")]
    assert written == ["refused 0", "refused 1", "refused 2"]
    now[0] = 61
    assert log.lines("refused 10") == ["7 similar lines suppressed in the last 60 s", "refused 10"]


def test_request_buckets_allow_bursts_then_the_average_rate_per_key() -> None:
    now = [0.0]
    buckets = RequestBuckets(lambda: now[0], rate=10.0, burst=20.0)
    assert all(buckets.wait("alice") == 0 for _ in range(20))
    assert buckets.wait("alice") == pytest.approx(0.1)  # empty: the next in a tenth of a second
    assert buckets.wait("bob") == 0  # others are not slowed by alice
    now[0] += 0.5
    assert sum(buckets.wait("alice") == 0 for _ in range(10)) == 5  # refilled at 10 a second


def test_request_buckets_stay_bounded_under_a_flood_of_keys() -> None:
    now = [0.0]
    buckets = RequestBuckets(lambda: now[0], rate=1.0, burst=2.0, max_keys=100)
    for i in range(10_000):
        now[0] += 0.001
        assert buckets.wait(f"key{i}") == 0  # a new key always gets its burst
        assert len(buckets._buckets) <= 100
