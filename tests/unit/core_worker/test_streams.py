"""The owner's stream table: items in order, once each, with backpressure and drops."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from manta._private import serialization
from manta._private.common.ids import JobID, NodeID, ObjectID, TaskID, WorkerID
from manta._private.core_worker.memory_store import MemoryStore
from manta._private.core_worker.reference_counter import ReferenceCounter
from manta._private.core_worker.streams import (
    END_OF_STREAM,
    DynamicObjectRefGenerator,
    StreamTable,
    item_id,
)
from manta._private.rpc.messages import Address, ReturnObject
from manta.exceptions import RayTaskError

ME = WorkerID.from_random()
OWNER = Address(NodeID.from_random(), ME, "127.0.0.1", 1, "", 1)
JOB = JobID.from_int(1)


class Table:
    def __init__(self) -> None:
        self.store = MemoryStore()
        self.refs = ReferenceCounter()
        self.freed: list[ReturnObject] = []
        self.table = StreamTable(
            self.store, self.refs, ME, lambda: OWNER, self.freed.extend, lambda f, *a: f(*a)
        )
        self.task = TaskID.for_normal_task(JOB)

    def item(
        self, index: int, value: Any = None, stored: bool = False, node: NodeID | None = None
    ) -> ReturnObject:
        oid = item_id(self.task, index)
        if stored or node is not None:
            return ReturnObject(oid, None, 1000, node or NodeID.from_random())
        blob = serialization.to_inline(serialization.serialize(index if value is None else value))
        return ReturnObject(oid, blob, len(blob), None)

    def send(self, index: int, **kwargs: Any) -> Any:
        async def on_loop() -> Any:
            return self.table.on_item(self.task, index, self.item(index, **kwargs))

        return asyncio.run(on_loop())

    def read_all(self) -> list[Any]:
        values = []
        while True:
            ref = self.table.take(self.task)
            if ref is None:
                return values
            values.append(serialization.from_inline(self.store.get(ref.id).inline))


def test_items_are_read_in_order_and_repeats_are_dropped() -> None:
    t = Table()
    t.table.open(t.task, dynamic=False, backpressure=0)
    assert t.send(1) is True
    assert t.send(0) is True
    assert t.send(0, value="again") is True  # a retried attempt's repeat: dropped
    assert t.table.next_id(t.task) == item_id(t.task, 0)
    t.table.finish(t.task)
    assert t.store.get(item_id(t.task, 2)) is END_OF_STREAM
    assert t.read_all() == [0, 1]
    assert t.table.at_end(t.task)


def test_a_repeat_of_a_stored_item_keeps_its_copy_on_the_same_node() -> None:
    t = Table()
    t.table.open(t.task, dynamic=False, backpressure=0)
    node = NodeID.from_random()
    t.send(0, node=node)
    t.send(0, node=node)
    assert t.freed == []  # the same object: freeing it would lose the first delivery


def test_a_fresh_copy_replaces_a_lost_or_distant_one() -> None:
    t = Table()
    t.table.open(t.task, dynamic=False, backpressure=0)
    first, second, third = NodeID.from_random(), NodeID.from_random(), NodeID.from_random()
    t.send(0, node=first)
    t.send(0, node=second)  # a re-run elsewhere (the first node may be gone)
    assert t.store.get(item_id(t.task, 0)).node_id == second
    assert [(r.object_id, r.node_id) for r in t.freed] == [(item_id(t.task, 0), first)]
    t.store.delete([item_id(t.task, 0)])  # a reader found it lost
    t.send(0, node=third)
    assert t.store.get(item_id(t.task, 0)).node_id == third
    assert t.table.stored_item_ids(t.task) == [item_id(t.task, 0)]


def test_items_after_the_end_or_a_drop_are_freed() -> None:
    t = Table()
    t.table.open(t.task, dynamic=False, backpressure=0)
    t.table.finish(t.task)
    t.send(0, stored=True)
    assert [r.object_id for r in t.freed] == [item_id(t.task, 0)]
    t.table.drop(t.task)
    assert t.store.get(item_id(t.task, 0)) is None  # the end marker went with the stream
    t.send(1, stored=True)
    assert len(t.freed) == 2


def test_an_item_with_the_wrong_id_is_refused() -> None:
    t = Table()
    t.table.open(t.task, dynamic=False, backpressure=0)

    async def send() -> None:
        t.table.on_item(t.task, 3, t.item(2))

    with pytest.raises(ValueError, match="wrong id"):
        asyncio.run(send())


def test_backpressure_holds_replies_until_items_are_taken() -> None:
    t = Table()
    t.table.open(t.task, dynamic=False, backpressure=2)

    async def scenario() -> None:
        assert t.table.on_item(t.task, 0, t.item(0)) is True  # 1 unread < 2
        held = t.table.on_item(t.task, 1, t.item(1))  # 2 unread: wait
        assert isinstance(held, asyncio.Future) and not held.done()
        assert t.table.take(t.task) is not None
        assert held.done() and held.result() is True

    asyncio.run(scenario())


def test_dropping_a_stream_releases_held_replies() -> None:
    t = Table()
    t.table.open(t.task, dynamic=False, backpressure=1)

    async def scenario() -> None:
        held = t.table.on_item(t.task, 0, t.item(0))
        assert not held.done()
        t.table.drop(t.task)
        assert held.result() is True

    asyncio.run(scenario())


def test_dynamic_returns_hold_the_items_and_the_error() -> None:
    t = Table()
    t.table.open(t.task, dynamic=True, backpressure=0)
    t.send(0)
    t.send(1)
    completion = ObjectID.for_return(t.task, 0)
    t.refs.add_owned(completion)
    error = RayTaskError("f", "Traceback...", KeyError("late"))
    blob = serialization.to_inline(serialization.serialize(error, serialization.FLAG_ERROR))
    [ret] = t.table.dynamic_returns(t.task, [ReturnObject(completion, blob, len(blob), None)])
    value = serialization.from_inline(ret.inline)
    assert isinstance(value, DynamicObjectRefGenerator)
    ids = [r.id for r in value]
    assert ids == [item_id(t.task, 0), item_id(t.task, 1), item_id(t.task, 2)]
    assert t.store.get(ids[2]).is_error
    assert len(t.table) == 0


@given(st.lists(st.integers(min_value=0, max_value=7), max_size=40), st.integers(min_value=1, max_value=8))
def test_each_item_is_read_once_whatever_the_arrival_order(arrivals: list[int], n: int) -> None:
    t = Table()
    t.table.open(t.task, dynamic=False, backpressure=0)
    for index in [i % n for i in arrivals] + list(range(n)):  # every item arrives at least once
        t.send(index)
    t.table.finish(t.task)
    assert t.read_all() == list(range(n))


def test_a_finalizer_drop_takes_no_lock() -> None:
    # A generator's __del__ can run during any allocation, even one made while this thread
    # holds the memory store's (or the table's) lock: dropping must then only queue.
    t = Table()
    queued: list[Any] = []
    t.table = StreamTable(
        t.store, t.refs, ME, lambda: OWNER, t.freed.extend, lambda f, *a: queued.append((f, a))
    )
    t.table.open(t.task, dynamic=False, backpressure=0)
    t.send(0)
    t.table.finish(t.task)
    with t.store._lock, t.table._lock:
        t.table.drop_soon(t.task)  # would deadlock if it took either lock
    for fn, args in queued:
        fn(*args)
    assert len(t.table) == 0
    assert t.store.get(item_id(t.task, 1)) is None  # the end marker went with it
