"""Request timing: every handler kind (plain, coroutine, future, raising) is observed
once per request, in the right bucket, with its role kept."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

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


def test_every_kind_of_handler_is_timed_once() -> None:
    histogram = LatencyHistogram()
    d = TimedDispatcher(histogram)

    async def slow(conn: Any, msg: Any) -> str:
        await asyncio.sleep(0.001)
        return "slow"

    def deferred(conn: Any, msg: Any) -> asyncio.Future[str]:
        fut = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(fut.set_result, "deferred")
        return fut

    def broken(conn: Any, msg: Any) -> None:
        raise ValueError("bad input")

    d.register(Plain, lambda c, m: "plain", "read")
    d.register(Slow, slow)
    d.register(Deferred, deferred)
    d.register(Broken, broken)
    d.register(Plain, d.handler_for(Plain)[0], "read")  # re-registered (as the access service does)
    d.time_handlers()

    async def main() -> None:
        assert d.handler_for(Plain)[0](None, Plain()) == "plain"
        assert await d.handler_for(Slow)[0](None, Slow()) == "slow"
        assert await d.handler_for(Deferred)[0](None, Deferred()) == "deferred"
        await asyncio.sleep(0)  # the future's callbacks run
        with pytest.raises(ValueError):
            d.handler_for(Broken)[0](None, Broken())

    asyncio.run(main())
    assert {method: int(sum(counts[:-1])) for method, counts in histogram.by_method.items()} == {
        "Plain": 1,
        "Slow": 1,
        "Deferred": 1,
        "Broken": 1,
    }
    assert d.handler_for(Plain)[1] == "read" and d.handler_for(Slow)[1] == "cluster"
