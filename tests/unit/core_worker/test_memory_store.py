"""The owner's memory store: first put wins, waits with timeouts, ready callbacks."""

from __future__ import annotations

import threading

import pytest

from manta._private.common.ids import JobID, NodeID, ObjectID, TaskID
from manta._private.core_worker.memory_store import MemoryStore, StoredObject

TASK = TaskID.for_driver(JobID.from_int(1))


def oid(i: int) -> ObjectID:
    return ObjectID.for_put(TASK, i)


def inline(value: bytes) -> StoredObject:
    return StoredObject(value, None, len(value), False)


def test_put_get_contains_delete() -> None:
    store = MemoryStore()
    assert store.get(oid(0)) is None
    assert not store.contains(oid(0))
    store.put(oid(0), inline(b"a"))
    remote = StoredObject(None, NodeID.from_random(), 1 << 20, False)
    store.put(oid(1), remote)
    assert store.get(oid(0)) == inline(b"a")
    assert store.get(oid(1)) is remote
    assert len(store) == 2
    store.delete([oid(0), oid(7)])
    assert not store.contains(oid(0))
    assert len(store) == 1


def test_first_put_wins() -> None:
    store = MemoryStore()
    store.put(oid(0), inline(b"first"))
    store.put(oid(0), inline(b"late result"))
    assert store.get(oid(0)) == inline(b"first")


def test_stored_object_is_frozen() -> None:
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        inline(b"x").size = 3  # type: ignore[misc]


def test_wait_returns_at_once_when_enough_are_ready() -> None:
    store = MemoryStore()
    store.put(oid(0), inline(b"a"))
    store.put(oid(1), inline(b"b"))
    assert store.wait([oid(0), oid(1), oid(2)], 2, None) == {oid(0), oid(1)}
    assert store.wait([], 0, None) == set()


def test_wait_times_out_with_what_is_ready() -> None:
    store = MemoryStore()
    store.put(oid(0), inline(b"a"))
    assert store.wait([oid(0), oid(1)], 2, 0) == {oid(0)}
    assert store.wait([oid(1)], 1, 0.01) == set()
    # Waiters are cleaned up: a later put wakes nobody stale.
    assert store._waiters == {}


def test_wait_counts_distinct_ids() -> None:
    store = MemoryStore()
    store.put(oid(0), inline(b"a"))
    # The same id twice is one object: asking for two cannot be satisfied by it.
    assert store.wait([oid(0), oid(0)], 2, 0) == {oid(0)}


def test_wait_wakes_on_put_from_another_thread() -> None:
    store = MemoryStore()
    result: list[set[ObjectID]] = []
    waiter = threading.Thread(target=lambda: result.append(store.wait([oid(0), oid(1)], 2, 30)))
    waiter.start()
    store.put(oid(0), inline(b"a"))
    store.put(oid(1), inline(b"b"))
    waiter.join(30)
    assert not waiter.is_alive()
    assert result == [{oid(0), oid(1)}]


def test_on_ready_now_and_later() -> None:
    store = MemoryStore()
    calls: list[tuple[str, StoredObject]] = []
    store.put(oid(0), inline(b"a"))
    store.on_ready(oid(0), lambda o: calls.append(("now", o)))
    assert calls == [("now", inline(b"a"))]
    store.on_ready(oid(1), lambda o: calls.append(("later-1", o)))
    store.on_ready(oid(1), lambda o: calls.append(("later-2", o)))
    assert len(calls) == 1
    store.put(oid(1), inline(b"b"))
    store.put(oid(1), inline(b"again"))  # ignored: callbacks ran once, with the first value
    assert calls[1:] == [("later-1", inline(b"b")), ("later-2", inline(b"b"))]


def test_callback_may_use_the_store() -> None:
    store = MemoryStore()
    seen: list[bool] = []
    # Callbacks run outside the store's lock, so they may read or write it.
    store.on_ready(oid(0), lambda _o: seen.append(store.contains(oid(0))))
    store.on_ready(oid(0), lambda _o: store.put(oid(1), inline(b"chained")))
    store.put(oid(0), inline(b"a"))
    assert seen == [True]
    assert store.get(oid(1)) == inline(b"chained")


def test_a_failing_callback_does_not_starve_the_others() -> None:
    """BUG: put() runs callbacks in a plain loop, so one that raises leaves every later
    callback for the object uncalled forever (and the exception escapes into put's caller,
    e.g. TaskManager._complete, leaving later returns unstored)."""
    store = MemoryStore()
    calls: list[str] = []

    def broken(_obj: StoredObject) -> None:
        raise RuntimeError("callback broke")

    store.on_ready(oid(0), broken)
    store.on_ready(oid(0), lambda _o: calls.append("second"))
    try:
        store.put(oid(0), inline(b"a"))
    except RuntimeError:
        pass
    assert store.contains(oid(0))
    assert calls == ["second"]
