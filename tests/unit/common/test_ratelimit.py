"""Bounded logging of what peers cause."""

from __future__ import annotations

from manta._private.common.ratelimit import RateLimitedLog


def test_refusal_log_is_rate_limited_and_reports_what_it_dropped() -> None:
    now = [0.0]
    log = RateLimitedLog(lambda: now[0], per_window=3, window_s=60)
    written = [line for i in range(10) for line in log.lines(f"refused {i}")]
    assert written == ["refused 0", "refused 1", "refused 2"]
    now[0] = 61
    assert log.lines("refused 10") == ["7 similar lines suppressed in the last 60 s", "refused 10"]
