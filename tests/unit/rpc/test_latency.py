"""Request timing: every handler kind (plain, coroutine, future, raising) is observed
once per request, in the right bucket, with its role kept."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from manta._private.common.clock import FakeClock
from manta._private.rpc.latency import LatencyHistogram, TimedDispatcher


class Plain:
    pass


class Slow:
    pass


class Deferred:
    pass


class Broken:
    pass


def test_a_bucket_holds_values_up_to_its_bound() -> None:
    histogram = LatencyHistogram((1.0, 10.0))
    for ms in (0.2, 1.0, 1.5, 10.0, 99.0):
        histogram.observe("Ping", ms)
    assert histogram.by_method == {"Ping": [2, 2, 1, 111.7]}


def test_every_kind_of_handler_is_timed_once_to_its_reply() -> None:
    histogram = LatencyHistogram((1.0, 10.0))
    clock = FakeClock(0.0)  # seconds; each handler takes what the test advances it by
    d = TimedDispatcher(histogram, clock.monotonic)
    loop = asyncio.new_event_loop()
    release, answer = loop.create_future(), loop.create_future()

    async def slow(conn: Any, msg: Any) -> str:
        await release
        return "slow"

    def broken(conn: Any, msg: Any) -> None:
        clock.advance(0.002)
        raise ValueError("bad input")

    d.register(Plain, lambda c, m: "plain", "read")
    d.register(Slow, slow)
    d.register(Deferred, lambda c, m: answer)
    d.register(Broken, broken)
    d.register(Plain, d.handler_for(Plain)[0], "read")  # re-registered (as the access service does)
    d.time_handlers()

    async def main() -> None:
        assert d.handler_for(Plain)[0](None, Plain()) == "plain"
        slow_reply = asyncio.ensure_future(d.handler_for(Slow)[0](None, Slow()))
        deferred_reply = d.handler_for(Deferred)[0](None, Deferred())
        await asyncio.sleep(0)  # the slow handler waits
        clock.advance(0.005)
        release.set_result(None)
        assert await slow_reply == "slow"
        clock.advance(0.045)
        answer.set_result("deferred")
        assert await deferred_reply == "deferred"
        await asyncio.sleep(0)  # the future's callbacks run
        with pytest.raises(ValueError):
            d.handler_for(Broken)[0](None, Broken())

    loop.run_until_complete(main())
    loop.close()
    assert histogram.by_method == {
        "Plain": [1, 0, 0, 0.0],
        "Slow": [0, 1, 0, pytest.approx(5.0)],
        "Deferred": [0, 0, 1, pytest.approx(50.0)],
        "Broken": [0, 1, 0, pytest.approx(2.0)],
    }
    assert d.handler_for(Plain)[1] == "read" and d.handler_for(Slow)[1] == "cluster"
