"""Bounds on what a peer can cause: log lines (a flood of refusals must not fill the disk)
and requests (one token or address cannot take the service for itself)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RateLimitedLog:
    """At most ``per_window`` lines per ``window_s``; the rest are counted and reported in
    one line when the next window opens."""

    clock: Callable[[], float]
    per_window: int = 20
    window_s: float = 60.0
    _window_start: float = field(default=float("-inf"), init=False)
    _in_window: int = field(default=0, init=False)
    _suppressed: int = field(default=0, init=False)

    def lines(self, line: str) -> list[str]:
        """The lines to write now for this event (none when over the limit)."""
        now = self.clock()
        out = []
        if now - self._window_start >= self.window_s:
            if self._suppressed:
                out.append(f"{self._suppressed} similar lines suppressed in the last {self.window_s:.0f} s")
            self._window_start, self._in_window, self._suppressed = now, 0, 0
        if self._in_window < self.per_window:
            self._in_window += 1
            out.append(line)
        else:
            self._suppressed += 1
        return out

    def log(self, logger: logging.Logger, line: str) -> None:
        for text in self.lines(line):
            logger.warning("%s", text)


@dataclass
class RequestBuckets:
    """A token bucket per key (a token's name, a peer's address): ``rate`` requests a second
    on average, bursts of up to ``burst``. Keys idle long enough to be full again are
    forgotten when the table is full, so a flood of new keys cannot grow it without bound."""

    clock: Callable[[], float]
    rate: float
    burst: float
    max_keys: int = 10_000
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict, init=False)

    def wait(self, key: str) -> float:
        """0 when a request under ``key`` may go now (and counts it), else seconds until one may."""
        now = self.clock()
        level, then = self._buckets.get(key, (self.burst, now))
        level = min(self.burst, level + (now - then) * self.rate)
        if level < 1.0:
            self._buckets[key] = (level, now)
            return (1.0 - level) / self.rate
        if key not in self._buckets and len(self._buckets) >= self.max_keys:
            self._forget_full(now)
        self._buckets[key] = (level - 1.0, now)
        return 0.0

    def _forget_full(self, now: float) -> None:
        refill = self.burst / self.rate
        for key in [k for k, (_level, then) in self._buckets.items() if now - then >= refill]:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:  # all busy: drop the oldest half
            for key in sorted(self._buckets, key=lambda k: self._buckets[k][1])[: self.max_keys // 2]:
                del self._buckets[key]
