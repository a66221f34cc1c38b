"""The object table as a pure state machine: events in, results and actions out, a fake clock."""

from __future__ import annotations

from collections.abc import Hashable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from manta._private.common.clock import FakeClock
from manta._private.common.ids import JobID, ObjectID, TaskID, WorkerID
from manta._private.object_store.object_table import ObjectTable
from manta._private.object_store.results import (
    Aborted,
    Action,
    AlreadyExists,
    Created,
    DeleteSpillFile,
    Evicted,
    NeedsSpace,
    ObjectState,
    ObjectStatus,
    Pinned,
    Sealed,
    Spill,
    StoreRequestError,
    TooLarge,
    Unavailable,
)

KiB = 1024
OWNER = WorkerID(b"\x01" * 28)
OTHER_OWNER = WorkerID(b"\x02" * 28)
_TASK = TaskID.for_normal_task(JobID.from_int(1))


def oid(i: int) -> ObjectID:
    return ObjectID.for_put(_TASK, i)


def of(kind: type, actions: list[Action]) -> list:
    return [a for a in actions if isinstance(a, kind)]


def make(capacity: int = 8 * KiB) -> tuple[ObjectTable, FakeClock]:
    clock = FakeClock()
    return ObjectTable(capacity, clock), clock


def put(
    store: ObjectTable,
    i: int,
    size: int = KiB,
    *,
    primary: bool = True,
    owner: WorkerID = OWNER,
    client: Hashable = "writer",
) -> Created:
    created = store.create(oid(i), size, owner, client, primary=primary)
    assert isinstance(created, Created), created
    assert store.seal(oid(i), client) == [Sealed(oid(i), created.offset, size)]
    return created


def test_create_seal_pin_unpin() -> None:
    store, _ = make()
    created = store.create(oid(1), 1000, OWNER, "w")
    assert created == Created(oid(1), 0, 1000)
    assert store.pin(oid(1), "r") == Unavailable(oid(1), ObjectStatus.UNSEALED)
    assert store.seal(oid(1), "w") == [Sealed(oid(1), 0, 1000)]
    assert store.pin(oid(1), "r") == Pinned(oid(1), 0, 1000)
    assert store.pin(oid(1), "r") == Pinned(oid(1), 0, 1000)
    info = store.info(oid(1))
    assert info is not None and info.state is ObjectState.SEALED and info.pins == 2
    store.unpin(oid(1), "r")
    store.unpin(oid(1), "r")
    store.unpin(oid(1), "r")  # one too many: ignored
    info = store.info(oid(1))
    assert info is not None and info.pins == 0
    assert store.pin(oid(2), "r") == Unavailable(oid(2), ObjectStatus.MISSING)
    store.validate()


def test_bad_requests_raise_and_change_nothing() -> None:
    store, _ = make()
    with pytest.raises(StoreRequestError, match="not in this store"):
        store.seal(oid(1), "w")
    put(store, 1)
    with pytest.raises(StoreRequestError, match="sealed"):
        store.seal(oid(1), "w")
    with pytest.raises(StoreRequestError):
        store.abort(oid(1), "w")
    with pytest.raises(StoreRequestError):
        store.spilled(oid(1), "/x")
    with pytest.raises(StoreRequestError):
        store.restored(oid(1))
    with pytest.raises(StoreRequestError):
        store.create(oid(2), -1, OWNER, "w")
    assert store.create(oid(1), 10, OWNER, "w") == AlreadyExists(oid(1), ObjectState.SEALED)
    store.validate()


def test_an_object_larger_than_the_store_is_too_large_naming_the_sizes() -> None:
    store, _ = make(8 * KiB)
    result = store.create(oid(1), 10_000, OWNER, "w")
    assert result == TooLarge(oid(1), 10_000, 8 * KiB)
    assert isinstance(result, TooLarge)
    assert "10000 bytes" in result.message and "8192 bytes" in result.message
    assert len(store) == 0 and store.evict_for(10_000) == []


def test_needs_space_changes_nothing() -> None:
    store, _ = make(4 * KiB)
    put(store, 1, 3 * KiB)
    result = store.create(oid(2), 2 * KiB, OWNER, "w")
    assert result == NeedsSpace(oid(2), 2 * KiB, 2 * KiB, KiB, KiB)
    assert isinstance(result, NeedsSpace) and result.bytes_short == KiB
    assert oid(2) not in store and store.allocator.used_bytes == 3 * KiB


def test_secondary_copies_are_evicted_in_lru_order() -> None:
    store, clock = make(4 * KiB)
    for i in range(4):
        put(store, i, primary=False)
        clock.advance(1)
    # Reading 0 and 2 makes them recent: the order is now 1, 3, 0, 2.
    for i in (0, 2):
        store.pin(oid(i), "r")
        clock.advance(1)
        store.unpin(oid(i), "r")
    assert isinstance(store.create(oid(9), KiB, OWNER, "w"), NeedsSpace)
    assert store.evict_for(KiB) == [Evicted(oid(1), KiB, None)]
    assert oid(1) not in store
    assert isinstance(store.create(oid(9), KiB, OWNER, "w"), Created)
    store.seal(oid(9), "w")
    # The arena is now [0][9][2][3], 9 a primary; LRU order 3, 0, 2. Two contiguous KiB
    # need 3 and 2 gone; 0 came before 2 in LRU order but would not have helped, so it stays.
    assert [a.object_id for a in store.evict_for(2 * KiB)] == [oid(3), oid(2)]
    assert oid(0) in store
    store.validate()


def test_eviction_accounts_for_fragmentation() -> None:
    store, clock = make(4 * KiB)
    for i in range(4):
        put(store, i, primary=False)
        clock.advance(1)
    for i in (1, 0, 2, 3):  # LRU order becomes 1, 0, 2, 3
        store.pin(oid(i), "r")
        store.unpin(oid(i), "r")
        clock.advance(1)
    store.pin(oid(0), "r")  # 0 cannot go; evicting 1 and then 2 makes 2 KiB contiguous
    actions = store.evict_for(2 * KiB)
    assert [a.object_id for a in of(Evicted, actions)] == [oid(1), oid(2)]
    assert store.allocator.largest_free() == 2 * KiB
    store.validate()


def test_pinned_objects_are_never_evicted_and_a_full_store_names_its_holders() -> None:
    store, _ = make(4 * KiB)
    put(store, 1, 3 * KiB, primary=False, owner=OTHER_OWNER)
    put(store, 2, KiB)
    store.pin(oid(1), "reader")
    store.pin(oid(2), "reader")
    assert store.evict_for(2 * KiB) == []
    assert oid(1) in store and oid(2) in store
    message = store.full_message(oid(3), 2 * KiB)
    assert oid(3).hex() in message
    assert message.index(oid(1).hex()) < message.index(oid(2).hex())  # biggest first
    assert OTHER_OWNER.hex()[:12] in message and "pinned by a reader" in message
    stats = store.stats()
    assert [h.object_id for h in stats.biggest] == [oid(1), oid(2)]
    assert stats.biggest[0].owner == OTHER_OWNER and stats.biggest[0].size == 3 * KiB
    assert stats.top_owners[0].owner == OTHER_OWNER and stats.top_owners[0].bytes == 3 * KiB
    assert stats.num_pinned == 2 and stats.droppable_bytes == stats.spillable_bytes == 0
    # The reader goes away: now the secondary can be dropped.
    store.client_gone("reader")
    assert store.evict_for(2 * KiB) == [Evicted(oid(1), 3 * KiB, None)]


def test_primaries_spill_only_when_secondaries_are_not_enough() -> None:
    store, clock = make(4 * KiB)
    for i, primary in ((1, True), (2, False), (3, True), (4, False)):
        put(store, i, primary=primary)
        clock.advance(1)
    # One KiB: a secondary is dropped, though primary 1 is older.
    assert store.evict_for(KiB) == [Evicted(oid(2), KiB, None)]
    # Three KiB out of [1][ ][3][4]: secondary 4 is not enough, so primaries spill, LRU first.
    actions = store.evict_for(3 * KiB)
    assert actions == [Evicted(oid(4), KiB, None), Spill(oid(1), 0, KiB), Spill(oid(3), 2 * KiB, KiB)]
    # Spills in flight count: asking again spills nothing more.
    assert store.evict_for(3 * KiB) == []
    assert store.stats().num_spilling == 2
    assert store.pin(oid(1), "r") == Pinned(oid(1), 0, KiB)  # still readable meanwhile
    store.unpin(oid(1), "r")
    assert store.spilled(oid(1), "/spill/1") == []
    assert store.spilled(oid(3), "/spill/3") == []
    assert store.pin(oid(1), "r") == Unavailable(oid(1), ObjectStatus.SPILLED)
    stats = store.stats()
    assert stats.num_spilled == 2 and stats.spilled_bytes == 2 * KiB
    assert isinstance(store.create(oid(6), 3 * KiB, OWNER, "w"), Created)
    store.validate()


def test_primaries_spill_in_lru_order_and_only_where_it_helps() -> None:
    store, clock = make(4 * KiB)
    for i in range(4):
        put(store, i)
        clock.advance(1)
    for i in (2, 0, 3, 1):  # LRU order becomes 2, 0, 3, 1
        store.pin(oid(i), "r")
        store.unpin(oid(i), "r")
        clock.advance(1)
    assert store.evict_for(KiB) == [Spill(oid(2), 2 * KiB, KiB)]
    store.spill_failed(oid(2))
    clock.advance(1)
    # LRU is now 0, 3, 1, 2: 0 and 3 are not adjacent, so 3 stays and 1 joins 0.
    assert store.evict_for(2 * KiB) == [Spill(oid(0), 0, KiB), Spill(oid(1), KiB, KiB)]
    store.validate()


def test_a_failed_spill_leaves_the_object_in_memory() -> None:
    store, _ = make(2 * KiB)
    put(store, 1, 2 * KiB)
    assert of(Spill, store.evict_for(KiB)) == [Spill(oid(1), 0, 2 * KiB)]
    assert store.spill_failed(oid(1)) == []
    info = store.info(oid(1))
    assert info is not None and info.state is ObjectState.SEALED and not info.spilling
    assert store.pin(oid(1), "r") == Pinned(oid(1), 0, 2 * KiB)
    store.unpin(oid(1), "r")
    assert of(Spill, store.evict_for(KiB)) == [Spill(oid(1), 0, 2 * KiB)]  # may be tried again
    store.validate()


def test_an_object_pinned_during_its_spill_stays_in_memory_until_evicted() -> None:
    store, _ = make(2 * KiB)
    put(store, 1, 2 * KiB)
    store.evict_for(KiB)
    store.pin(oid(1), "r")
    assert store.spilled(oid(1), "/spill/1") == []
    assert store.allocator.used_bytes == 2 * KiB and store.evict_for(KiB) == []
    store.unpin(oid(1), "r")
    # On disk already: dropped without another spill.
    assert store.evict_for(KiB) == [Evicted(oid(1), 2 * KiB, "/spill/1")]
    info = store.info(oid(1))
    assert info is not None and info.state is ObjectState.SPILLED
    store.validate()


def spilled_object(store: ObjectTable, i: int, size: int = KiB, path: str = "/spill/x") -> None:
    put(store, i, size)
    assert of(Spill, store.evict_for(store.capacity))
    store.spilled(oid(i), path)


def test_restore_reads_back_and_the_restored_copy_is_droppable() -> None:
    store, _ = make(4 * KiB)
    spilled_object(store, 1, path="/spill/1")
    result = store.restore(oid(1))
    assert result == Created(oid(1), 0, KiB, restore_from="/spill/1")
    assert store.pin(oid(1), "r") == Unavailable(oid(1), ObjectStatus.RESTORING)
    assert store.restore(oid(1)) == Unavailable(oid(1), ObjectStatus.RESTORING)
    assert store.restored(oid(1)) == [Sealed(oid(1), 0, KiB)]
    assert store.restore(oid(1)) == Unavailable(oid(1), ObjectStatus.IN_MEMORY)
    assert store.stats().droppable_bytes == KiB
    assert store.evict_for(4 * KiB) == [Evicted(oid(1), KiB, "/spill/1")]
    assert store.restore(oid(2)) == Unavailable(oid(2), ObjectStatus.MISSING)
    store.validate()


def test_restore_needs_space_and_a_failed_restore_leaves_it_spilled() -> None:
    store, _ = make(2 * KiB)
    spilled_object(store, 1, 2 * KiB, path="/spill/1")
    put(store, 2, KiB)
    store.pin(oid(2), "r")
    assert store.restore(oid(1)) == NeedsSpace(oid(1), 2 * KiB, 2 * KiB, KiB, KiB)
    store.client_gone("r")
    assert of(Spill, store.evict_for(2 * KiB)) == [Spill(oid(2), 0, KiB)]
    store.spilled(oid(2), "/spill/2")
    restore = store.restore(oid(1))
    assert isinstance(restore, Created) and restore.restore_from == "/spill/1"
    assert store.abort(oid(1), None) == []  # reading the file failed
    info = store.info(oid(1))
    assert info is not None and info.state is ObjectState.SPILLED and info.spill_path == "/spill/1"
    assert store.allocator.used_bytes == 0
    store.validate()


def test_client_gone_aborts_its_unsealed_objects_and_drops_its_pins() -> None:
    store, _ = make(4 * KiB)
    put(store, 1, client="c")
    store.pin(oid(1), "c")
    store.create(oid(2), KiB, OWNER, "c")
    store.create(oid(3), KiB, OWNER, "c")
    store.create(oid(4), KiB, OWNER, "other")
    actions = store.client_gone("c")
    assert sorted(of(Aborted, actions), key=lambda a: a.object_id) == [Aborted(oid(2)), Aborted(oid(3))]
    assert oid(2) not in store and oid(3) not in store and oid(4) in store
    info = store.info(oid(1))
    assert info is not None and info.pins == 0
    assert store.allocator.used_bytes == 2 * KiB
    assert store.client_gone("c") == []
    store.validate()


def test_abort_frees_the_space_of_a_half_written_object() -> None:
    store, _ = make(2 * KiB)
    store.create(oid(1), 2 * KiB, OWNER, "w")
    assert store.abort(oid(1), "w") == [Aborted(oid(1))]
    assert oid(1) not in store and store.allocator.free_bytes == 2 * KiB
    assert isinstance(store.create(oid(1), 2 * KiB, OWNER, "w"), Created)


def test_free_of_a_spilled_object_returns_its_file_to_delete() -> None:
    store, _ = make(2 * KiB)
    spilled_object(store, 1, path="/spill/1")
    assert store.free([oid(1), oid(7)]) == [DeleteSpillFile(oid(1), "/spill/1")]
    assert oid(1) not in store
    assert store.free([oid(1)]) == []


def test_free_of_a_pinned_object_waits_for_the_last_reader() -> None:
    store, _ = make(2 * KiB)
    put(store, 1)
    store.pin(oid(1), "r")
    assert store.free([oid(1)]) == []
    assert store.allocator.used_bytes == KiB  # the reader's views stay valid
    assert store.pin(oid(1), "r2") == Unavailable(oid(1), ObjectStatus.FREED)
    assert store.evict_for(2 * KiB) == []
    assert store.unpin(oid(1), "r") == []
    assert oid(1) not in store and store.allocator.used_bytes == 0


def test_free_during_io_completes_when_the_io_does() -> None:
    store, _ = make(4 * KiB)
    spilled_object(store, 3, path="/spill/3")
    assert isinstance(store.restore(oid(3)), Created)  # restore in flight
    put(store, 1)
    assert store.evict_for(3 * KiB) == [Spill(oid(1), KiB, KiB)]  # spill in flight
    assert isinstance(store.create(oid(2), KiB, OWNER, "w"), Created)  # being written
    assert store.free([oid(1), oid(2), oid(3)]) == []
    assert store.spilled(oid(1), "/spill/1") == [DeleteSpillFile(oid(1), "/spill/1")]
    assert store.seal(oid(2), "w") == []
    assert store.restored(oid(3)) == [DeleteSpillFile(oid(3), "/spill/3")]
    assert len(store) == 0 and store.allocator.used_bytes == 0


def test_owner_gone_frees_everything_it_owned() -> None:
    store, _ = make(4 * KiB)
    put(store, 1, owner=OWNER)
    put(store, 2, owner=OTHER_OWNER)
    store.owner_gone(OWNER)
    assert oid(1) not in store and oid(2) in store


# -- random use ------------------------------------------------------------------------------

CLIENTS = ("a", "b", "c")
events = st.lists(
    st.tuples(
        st.sampled_from(
            [
                *("put", "put", "put2", "create", "seal", "abort", "pin", "unpin", "free"),
                *("evict", "evict", "io", "io", "restore", "restore", "gone"),
            ]
        ),
        st.integers(0, 5),
        st.sampled_from(CLIENTS),
        st.integers(1, 3 * KiB),
    ),
    max_size=80,
)


@given(events)
def test_random_events_keep_the_table_consistent(steps: list[tuple[str, int, str, int]]) -> None:
    store, clock = make(8 * KiB)
    pins: dict[tuple[ObjectID, str], int] = {}
    spilling: list[ObjectID] = []
    restoring: list[ObjectID] = []
    spill_files: set[str] = set()
    deleted: set[str] = set()

    def check(actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, (Evicted, Spill)):
                assert not any(n for (o, _), n in pins.items() if o == action.object_id)
            if isinstance(action, Spill):
                spilling.append(action.object_id)
            if isinstance(action, DeleteSpillFile):
                assert action.path in spill_files and action.path not in deleted
                deleted.add(action.path)
            if isinstance(action, (Evicted, Aborted)) or isinstance(action, DeleteSpillFile):
                if action.object_id not in store:
                    for key in [k for k in pins if k[0] == action.object_id]:
                        assert pins.pop(key) == 0

    for kind, i, client, size in steps:
        clock.advance(1)
        object_id = oid(i)
        try:
            if kind in ("put", "put2", "create"):
                created = store.create(object_id, size, OWNER, client, primary=kind != "put2")
                if isinstance(created, Created) and kind != "create":
                    check(store.seal(object_id, client))
            elif kind == "seal":
                check(store.seal(object_id, client))
            elif kind == "abort":
                check(store.abort(object_id, client))
            elif kind == "pin":
                if isinstance(store.pin(object_id, client), Pinned):
                    pins[object_id, client] = pins.get((object_id, client), 0) + 1
            elif kind == "unpin":
                check(store.unpin(object_id, client))
                if pins.get((object_id, client)):
                    pins[object_id, client] -= 1
            elif kind == "free":
                check(store.free([object_id]))
            elif kind == "evict":
                check(store.evict_for(size))
            elif kind == "io" and spilling:
                done = spilling.pop(size % len(spilling))
                if size % 3:
                    path = f"/spill/{done.hex()}/{size}"
                    spill_files.add(path)
                    check(store.spilled(done, path))
                else:
                    check(store.spill_failed(done))
            elif kind == "io" and restoring:
                done = restoring.pop()
                check(store.restored(done) if size % 4 else store.abort(done, None))
            elif kind == "restore":
                result = store.restore(object_id)
                if isinstance(result, Created):
                    restoring.append(object_id)
            elif kind == "gone":
                check(store.client_gone(client))
                for key in [k for k in pins if k[1] == client]:
                    del pins[key]
        except StoreRequestError:
            pass
        store.validate()
        stats = store.allocator.stats()
        assert stats.used_bytes + stats.free_bytes == stats.capacity
    # Wind down: every I/O completes, every client leaves, the owner frees everything.
    for object_id in spilling:
        spill_files.add(f"/final/{object_id.hex()}")
        check(store.spilled(object_id, f"/final/{object_id.hex()}"))
    for object_id in restoring:
        check(store.restored(object_id))
    for client in CLIENTS:
        check(store.client_gone(client))
    check(store.free([oid(i) for i in range(6)]))
    assert len(store) == 0
    assert store.allocator.largest_free() == store.capacity


def test_only_the_writer_seals_or_aborts_and_nobody_aborts_a_restore() -> None:
    store, _ = make(4 * KiB)
    store.create(oid(1), KiB, OWNER, "w")
    with pytest.raises(StoreRequestError, match="by someone else"):
        store.seal(oid(1), "intruder")
    with pytest.raises(StoreRequestError, match="by someone else"):
        store.abort(oid(1), "intruder")
    assert store.seal(oid(1), "w") == [Sealed(oid(1), 0, KiB)]
    assert of(Spill, store.evict_for(4 * KiB)) == [Spill(oid(1), 0, KiB)]
    store.spilled(oid(1), "/spill/1")
    assert isinstance(store.restore(oid(1)), Created)
    with pytest.raises(StoreRequestError, match="by someone else"):
        store.abort(oid(1), "w")  # the daemon is reading its file back into that space
    assert store.restored(oid(1)) == [Sealed(oid(1), 0, KiB)]
    store.validate()


@pytest.mark.parametrize("size", [1.5, float("nan"), True, "10"])
def test_a_size_that_is_no_whole_number_is_refused(size: object) -> None:
    store, _ = make()
    with pytest.raises(StoreRequestError, match="not a whole number of bytes"):
        store.create(oid(1), size, OWNER, "w")  # type: ignore[arg-type]
    assert oid(1) not in store
    store.validate()
