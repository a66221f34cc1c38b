"""How long a daemon takes to handle each kind of request: a histogram per message type.

``TimedDispatcher.time_handlers`` wraps every handler registered so far once, after the
service has registered them all (the access service re-registers some with their roles:
wrapping at registration would time those twice). The gcs and node daemons use it; the
core worker, which serves the task path itself, does not. A handler that returns a future
or a coroutine is timed to its reply; one that returns another kind of awaitable (none
does) would be timed to its return.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable
from types import CoroutineType
from typing import Any

from manta._private.common.metric_defs import LATENCY_BUCKETS_MS
from manta._private.rpc.transport import Dispatcher, Handler


class LatencyHistogram:
    """Counts per message type and bucket, with sums; read by the daemon's metrics."""

    def __init__(self, buckets_ms: tuple[float, ...] = LATENCY_BUCKETS_MS) -> None:
        self.buckets_ms = buckets_ms
        # message type name -> [count per bucket (the last: above every bound)..., sum]
        self.by_method: dict[str, list[float]] = {}

    def counts(self, method: str) -> list[float]:
        counts = self.by_method.get(method)
        if counts is None:
            counts = self.by_method[method] = [0.0] * (len(self.buckets_ms) + 2)
        return counts

    def observe(self, method: str, ms: float) -> None:
        _add(self.counts(method), self.buckets_ms, ms)


def _add(counts: list[float], bounds: tuple[float, ...], ms: float) -> None:
    counts[bisect_left(bounds, ms)] += 1
    counts[-1] += ms


class TimedDispatcher(Dispatcher):
    def __init__(self, histogram: LatencyHistogram, clock: Callable[[], float] = time.perf_counter) -> None:
        """``clock``: seconds, as ``time.perf_counter`` (a test's fake one)."""
        super().__init__()
        self.histogram = histogram
        self._clock = clock

    def time_handlers(self) -> None:
        for message_type in list(self._handlers):
            handler, role = self._handlers[message_type]
            timed = _timed(handler, message_type.__name__, self.histogram, self._clock)
            self.register(message_type, timed, role)


def _timed(handler: Handler, method: str, histogram: LatencyHistogram, clock: Callable[[], float]) -> Handler:
    # Everything a request needs is bound here: one Python call, two clock reads and a
    # bucket search per request (about 0.4 us here; inspect.isawaitable alone is 0.45 us).
    counts, bounds = histogram.counts(method), histogram.buckets_ms

    def timed(conn: Any, msg: Any) -> Any:
        start = clock()
        try:
            result = handler(conn, msg)
        except BaseException:
            _add(counts, bounds, (clock() - start) * 1000)
            raise
        if isinstance(result, asyncio.Future):  # answered from its callback: timed to it
            result.add_done_callback(lambda _f: _add(counts, bounds, (clock() - start) * 1000))
        elif type(result) is CoroutineType:
            return _finish(result, counts, bounds, start, clock)
        else:
            _add(counts, bounds, (clock() - start) * 1000)
        return result

    return timed


async def _finish(
    pending: Awaitable[Any],
    counts: list[float],
    bounds: tuple[float, ...],
    start: float,
    clock: Callable[[], float],
) -> Any:
    try:
        return await pending
    finally:
        _add(counts, bounds, (clock() - start) * 1000)
