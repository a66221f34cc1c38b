"""ActorPool and the actor-backed Queue."""

from __future__ import annotations

import asyncio
import queue as stdlib_queue

import pytest

import manta
from manta.exceptions import GetTimeoutError
from manta.util import ActorPool
from manta.util.queue import Empty, Full, Queue


@manta.remote
class Doubler:
    def double(self, x):
        return 2 * x

    def slow(self, x, seconds):
        import time

        time.sleep(seconds)
        return x


@pytest.fixture(scope="module")
def pool_actors(cluster):
    return [Doubler.remote(), Doubler.remote()]


def test_map_keeps_order_and_map_unordered_gets_everything(pool_actors):
    pool = ActorPool(pool_actors)
    assert list(pool.map(lambda a, v: a.double.remote(v), range(10))) == [2 * v for v in range(10)]
    assert sorted(pool.map_unordered(lambda a, v: a.double.remote(v), range(10))) == [
        2 * v for v in range(10)
    ]


def test_submit_get_next_and_free_actors(pool_actors):
    pool = ActorPool(pool_actors)
    assert pool.has_free() and not pool.has_next()
    for v in range(5):
        pool.submit(lambda a, x: a.double.remote(x), v)
    assert not pool.has_free()  # two running, three waiting
    assert [pool.get_next() for _ in range(5)] == [0, 2, 4, 6, 8]
    assert not pool.has_next() and pool.has_free()
    with pytest.raises(StopIteration):
        pool.get_next()


def test_get_next_timeout_and_pop_push(pool_actors):
    pool = ActorPool(pool_actors)
    pool.submit(lambda a, x: a.slow.remote(x, 2.0), "late")
    with pytest.raises(GetTimeoutError):
        pool.get_next(timeout=0.05)
    assert pool.get_next(timeout=30) == "late"
    idle = pool.pop_idle()
    assert idle is not None
    with pytest.raises(ValueError, match="already belongs"):
        pool.push(pool_actors[0] if pool_actors[0] != idle else pool_actors[1])
    pool.push(idle)
    assert pool.has_free()


def test_pool_rejects_functions_that_return_no_ref(pool_actors):
    pool = ActorPool(pool_actors)
    with pytest.raises(TypeError, match="must return an ObjectRef"):
        pool.submit(lambda a, v: v, 1)


def test_queue_fifo_blocking_and_nonblocking(cluster):
    q = Queue(maxsize=2)
    try:
        q.put(1)
        q.put_nowait(2)
        assert q.full() and len(q) == 2 and q.qsize() == 2
        with pytest.raises(Full):
            q.put_nowait(3)
        with pytest.raises(Full):
            q.put(3, timeout=0.1)
        assert isinstance(Full(), stdlib_queue.Full)
        assert q.get() == 1 and q.get_nowait() == 2
        assert q.empty()
        with pytest.raises(Empty):
            q.get_nowait()
        with pytest.raises(Empty):
            q.get(timeout=0.1)
        assert isinstance(Empty(), stdlib_queue.Empty)
        with pytest.raises(ValueError):
            q.get(timeout=-1)
    finally:
        q.shutdown()


def test_queue_batches_are_all_or_nothing(cluster):
    q = Queue(maxsize=3)
    try:
        q.put_nowait_batch([1, 2])
        with pytest.raises(Full):
            q.put_nowait_batch([3, 4])
        assert q.size() == 2
        with pytest.raises(Empty):
            q.get_nowait_batch(3)
        assert q.get_nowait_batch(2) == [1, 2]
    finally:
        q.shutdown()


def test_queue_shared_with_tasks_and_async_use(cluster):
    q = Queue()

    @manta.remote
    def producer(q, n):
        for i in range(n):
            q.put(i)
        return n

    @manta.remote
    def consumer(q, n):
        return [q.get(timeout=30) for _ in range(n)]

    try:
        produced = producer.remote(q, 20)
        assert sorted(manta.get(consumer.remote(q, 20), timeout=60)) == list(range(20))
        assert manta.get(produced) == 20

        async def round_trip():
            await q.put_async("x")
            return await q.get_async(timeout=10)

        assert asyncio.run(round_trip()) == "x"
    finally:
        q.shutdown()


def test_bad_queue_arguments(cluster):
    with pytest.raises(ValueError, match="maxsize"):
        Queue(maxsize=-1)
