"""Reference counting: when an object is freed, and that counts never go wrong."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from manta._private.common.ids import JobID, NodeID, ObjectID, TaskID, WorkerID
from manta._private.core_worker.reference_counter import Freed, ReferenceCounter
from manta._private.rpc.messages import Address

TASK = TaskID.for_driver(JobID.from_int(1))
OWNER = Address(NodeID.from_random(), WorkerID.from_random(), "127.0.0.1", 1, "", 2)


def oid(i: int) -> ObjectID:
    return ObjectID.for_put(TASK, i)


def test_owned_object_freed_when_last_local_ref_drops() -> None:
    refs = ReferenceCounter()
    refs.add_owned(oid(0))
    refs.add_local(oid(0), None)
    refs.add_local(oid(0), None)
    assert refs.is_owned(oid(0))
    refs.drop_local(oid(0))
    assert refs.local_count(oid(0)) == 1  # counts queued drops before collect()
    assert refs.collect() == []
    refs.drop_local(oid(0))
    assert refs.local_count(oid(0)) == 0
    assert refs.collect() == [Freed(oid(0), owned=True)]
    assert not refs.is_owned(oid(0))
    assert refs.num_owned() == 0
    assert refs.collect() == []  # freed once


def test_collect_with_nothing_queued() -> None:
    refs = ReferenceCounter()
    refs.add_owned(oid(0))
    assert refs.collect() == []
    assert refs.is_owned(oid(0))


def test_submitted_tasks_keep_an_object_alive() -> None:
    refs = ReferenceCounter()
    refs.add_owned(oid(0))
    refs.add_local(oid(0), None)
    refs.add_submitted([oid(0), oid(0)])
    refs.drop_local(oid(0))
    assert refs.collect() == []
    refs.remove_submitted([oid(0)])
    assert refs.collect() == []
    refs.remove_submitted([oid(0)])
    assert refs.collect() == [Freed(oid(0), owned=True)]


def test_local_ref_outlives_finished_task() -> None:
    refs = ReferenceCounter()
    refs.add_owned(oid(0))
    refs.add_local(oid(0), None)
    refs.add_submitted([oid(0)])
    refs.remove_submitted([oid(0)])
    assert refs.collect() == []
    refs.drop_local(oid(0))
    assert refs.collect() == [Freed(oid(0), owned=True)]


def test_escaped_objects_are_never_freed() -> None:
    refs = ReferenceCounter()
    refs.add_owned(oid(0))
    refs.add_local(oid(0), None)
    refs.mark_escaped([oid(0), oid(9)])  # oid(9) is not owned: ignored
    refs.drop_local(oid(0))
    assert refs.collect() == []
    assert refs.is_owned(oid(0))


def test_borrowed_object_freed_as_not_owned() -> None:
    refs = ReferenceCounter()
    refs.note_borrowed(oid(1), OWNER)
    refs.add_local(oid(1), OWNER)
    assert refs.owner_of(oid(1)) == OWNER
    assert not refs.is_owned(oid(1))
    refs.drop_local(oid(1))
    assert refs.collect() == [Freed(oid(1), owned=False)]
    assert refs.owner_of(oid(1)) is None


def test_borrowing_an_owned_object_records_no_owner() -> None:
    refs = ReferenceCounter()
    refs.add_owned(oid(0))
    refs.note_borrowed(oid(0), OWNER)
    assert refs.owner_of(oid(0)) is None


def test_drops_from_another_thread_are_applied_by_collect() -> None:
    import threading

    refs = ReferenceCounter()
    refs.add_owned(oid(0))
    for _ in range(100):
        refs.add_local(oid(0), None)
    threads = [
        threading.Thread(target=lambda: [refs.drop_local(oid(0)) for _ in range(25)]) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert refs.collect() == [Freed(oid(0), owned=True)]


# Ops on a few objects: (kind, object index). Drops and task completions only happen
# when the model says there is something to drop, as the real callers guarantee.
_ops = st.lists(
    st.tuples(st.sampled_from(["add", "drop", "submit", "finish", "escape", "collect"]), st.integers(0, 3)),
    max_size=60,
)


@given(_ops)
def test_counts_never_negative_and_freed_objects_have_no_references(ops: list[tuple[str, int]]) -> None:
    refs = ReferenceCounter()
    local = dict.fromkeys(range(4), 0)
    submitted = dict.fromkeys(range(4), 0)
    escaped: set[int] = set()
    freed: set[int] = set()
    for i in range(4):
        refs.add_owned(oid(i))
        refs.add_local(oid(i), None)
        local[i] = 1
    for kind, i in ops:
        if i in freed:
            continue
        if kind == "add":
            refs.add_local(oid(i), None)
            local[i] += 1
        elif kind == "drop" and local[i] > 0:
            refs.drop_local(oid(i))
            local[i] -= 1
        elif kind == "submit":
            refs.add_submitted([oid(i)])
            submitted[i] += 1
        elif kind == "finish" and submitted[i] > 0:
            refs.remove_submitted([oid(i)])
            submitted[i] -= 1
        elif kind == "escape":
            refs.mark_escaped([oid(i)])
            escaped.add(i)
        elif kind == "collect":
            for f in refs.collect():
                index = next(j for j in range(4) if oid(j) == f.object_id)
                assert f.owned
                assert index not in freed, "freed twice"
                assert local[index] == 0 and submitted[index] == 0 and index not in escaped
                assert not refs.is_owned(f.object_id)
                freed.add(index)
        for j in range(4):
            assert refs.local_count(oid(j)) >= 0
            if j not in freed:
                assert refs.local_count(oid(j)) == local[j]
    for f in refs.collect():
        freed.add(next(j for j in range(4) if oid(j) == f.object_id))
    # Everything nobody needs is freed by the end; everything else is still owned.
    for j in range(4):
        unneeded = local[j] == 0 and submitted[j] == 0 and j not in escaped
        assert (j in freed) == unneeded
        assert refs.is_owned(oid(j)) == (j not in freed)
