"""Reference counting: when an object is freed, and that counts never go wrong."""

from __future__ import annotations

import threading

from hypothesis import given
from hypothesis import strategies as st

from manta._private.common.ids import JobID, NodeID, ObjectID, TaskID, WorkerID
from manta._private.core_worker.reference_counter import Freed, ReferenceCounter
from manta._private.rpc.messages import Address

TASK = TaskID.for_driver(JobID.from_int(1))
OWNER = Address(NodeID.from_random(), WorkerID.from_random(), "127.0.0.1", 1, "", 2)
ME = WorkerID.from_random()
B1, B2 = WorkerID.from_random(), WorkerID.from_random()
N1, N2 = NodeID.from_random(), NodeID.from_random()


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
    refs.add_submitted([(oid(0), None), (oid(0), None)])
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
    refs.add_submitted([(oid(0), None)])
    refs.remove_submitted([oid(0)])
    assert refs.collect() == []
    refs.drop_local(oid(0))
    assert refs.collect() == [Freed(oid(0), owned=True)]


def test_a_value_holds_the_refs_inside_it_until_it_is_freed() -> None:
    refs = ReferenceCounter()
    for i in (0, 1):
        refs.add_owned(oid(i))
        refs.add_local(oid(i), None)
    refs.add_contained(oid(1), [(oid(0), None)])  # put([ref0]) -> ref1
    refs.drop_local(oid(0))
    assert refs.collect() == []  # ref1's value still holds it
    refs.drop_local(oid(1))
    assert refs.collect() == [Freed(oid(1), owned=True), Freed(oid(0), owned=True)]


def test_nested_containers_release_in_one_collect() -> None:
    refs = ReferenceCounter()
    for i in range(4):
        refs.add_owned(oid(i))
        refs.add_local(oid(i), None)
    for i in range(1, 4):
        refs.add_contained(oid(i), [(oid(i - 1), None)])
    for i in range(4):
        refs.drop_local(oid(i))
    assert {f.object_id for f in refs.collect()} == {oid(i) for i in range(4)}


def test_contained_in_a_value_not_owned_here_holds_nothing() -> None:
    refs = ReferenceCounter()
    refs.add_owned(oid(0))
    refs.add_local(oid(0), None)
    refs.add_contained(oid(7), [(oid(0), None)])  # oid(7) unknown here
    refs.drop_local(oid(0))
    assert refs.collect() == [Freed(oid(0), owned=True)]


def test_borrowers_keep_an_owned_object_until_they_are_done() -> None:
    refs = ReferenceCounter()
    refs.add_owned(oid(0))
    refs.add_local(oid(0), None)
    assert refs.add_borrower(oid(0), B1, N1)
    assert refs.add_borrower(oid(0), B1, N1)  # B1 registered twice (e.g. once by a worker for it)
    assert refs.add_borrower(oid(0), B2, N2)
    assert refs.has_borrowers()
    refs.drop_local(oid(0))
    assert refs.collect() == []
    refs.remove_borrower(oid(0), B1)  # one of B1's registrations: it still holds the other
    assert refs.collect() == []
    refs.remove_borrower(oid(0), B1)
    assert refs.collect() == []
    refs.remove_borrower(oid(0), B2)
    assert refs.collect() == [Freed(oid(0), owned=True)]
    assert not refs.add_borrower(oid(0), B1, N1)  # freed: the borrower is told so
    assert not refs.has_borrowers()


def test_dead_borrowers_and_nodes_release_their_objects() -> None:
    refs = ReferenceCounter()
    for i in (0, 1):
        refs.add_owned(oid(i))
    refs.add_borrower(oid(0), B1, N1)
    refs.add_borrower(oid(1), B2, N2)
    refs.add_borrower(oid(1), B1, N1)
    refs.borrowers_gone(worker_id=B1)
    assert refs.collect() == [Freed(oid(0), owned=True)]
    refs.borrowers_gone(node_id=N2)
    assert refs.collect() == [Freed(oid(1), owned=True)]


def test_only_owners_take_borrowers() -> None:
    refs = ReferenceCounter()
    refs.add_local(oid(0), OWNER)  # borrowed
    assert not refs.add_borrower(oid(0), B1, N1)


def test_borrowed_object_registers_once_and_reports_its_owner_when_done() -> None:
    refs = ReferenceCounter()
    refs.add_local(oid(1), OWNER)
    refs.add_local(oid(1), OWNER)
    assert refs.owner_of(oid(1)) == OWNER
    assert not refs.is_owned(oid(1))
    assert refs.needs_registration(oid(1)) == OWNER
    refs.mark_registered([oid(1)])
    assert refs.needs_registration(oid(1)) is None
    refs.drop_local(oid(1))
    refs.drop_local(oid(1))
    assert refs.collect() == [Freed(oid(1), owned=False, owner=OWNER, registrations=1)]
    assert refs.owner_of(oid(1)) is None
    # Loaded again later: a new borrow to register.
    refs.add_local(oid(1), OWNER)
    assert refs.needs_registration(oid(1)) == OWNER


def test_unregistered_borrow_ends_silently() -> None:
    refs = ReferenceCounter()
    refs.add_local(oid(1), OWNER)
    refs.drop_local(oid(1))
    assert refs.collect() == [Freed(oid(1), owned=False, owner=None)]


def test_owned_objects_never_need_registration() -> None:
    refs = ReferenceCounter()
    refs.add_owned(oid(0))
    refs.add_local(oid(0), OWNER)
    assert refs.needs_registration(oid(0)) is None
    assert refs.owner_of(oid(0)) is None


def test_returned_refs_move_from_borrow_registration_to_the_result() -> None:
    refs = ReferenceCounter()
    result, mine, theirs = oid(0), oid(1), oid(2)
    refs.add_owned(result)
    refs.add_local(result, None)
    refs.add_owned(mine)
    refs.add_borrower(mine, ME, N1)  # the worker registered this process with itself
    refs.add_returned(result, [(mine, None), (theirs, OWNER)], ME)
    assert refs.needs_registration(theirs) is None  # the worker registered us with OWNER
    assert refs.collect() == []
    refs.drop_local(result)
    freed = refs.collect()
    assert freed[0] == Freed(result, owned=True)
    assert set(freed[1:]) == {
        Freed(mine, owned=True),
        Freed(theirs, owned=False, owner=OWNER, registrations=1),
    }


def test_pinned_refs_are_kept_while_the_process_lives() -> None:
    refs = ReferenceCounter()
    refs.add_owned(oid(0))
    refs.add_local(oid(0), None)
    refs.pin(oid(0), None)
    refs.drop_local(oid(0))
    assert refs.collect() == []
    assert refs.snapshot() == [(oid(0), True, 0, 0, 0, 0, 1)]


def test_out_of_band_pickles_hold_until_each_is_loaded() -> None:
    refs = ReferenceCounter()
    refs.add_local(oid(1), OWNER)
    refs.mark_registered([oid(1)])
    refs.add_out_of_band(oid(1), OWNER)
    refs.add_out_of_band(oid(1), OWNER)  # pickled twice
    refs.drop_local(oid(1))
    assert refs.collect() == []
    refs.consume_out_of_band([oid(1)])
    assert refs.collect() == []
    refs.consume_out_of_band([oid(1), oid(1), oid(5)])  # extra releases are ignored
    assert refs.collect() == [Freed(oid(1), owned=False, owner=OWNER, registrations=1)]


def test_drops_from_another_thread_are_applied_by_collect() -> None:
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


# Ops on a few owned objects: (kind, object index, other index). Drops, task completions
# and borrower removals only happen when the model says there is something to remove,
# as the real callers guarantee. "contain" puts object j inside object i's value.
_N = 4
_ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "drop", "submit", "finish", "contain", "borrow", "unborrow", "collect"]),
        st.integers(0, _N - 1),
        st.integers(0, _N - 1),
    ),
    max_size=60,
)


@given(_ops)
def test_freed_exactly_when_nothing_needs_the_object(ops: list[tuple[str, int, int]]) -> None:
    refs = ReferenceCounter()
    local = dict.fromkeys(range(_N), 0)
    submitted = dict.fromkeys(range(_N), 0)
    borrowers: dict[int, dict[int, int]] = {i: {} for i in range(_N)}  # registrations per borrower
    inside: dict[int, list[int]] = {i: [] for i in range(_N)}  # what each value holds
    freed: set[int] = set()
    workers = [WorkerID.from_random() for _ in range(_N)]
    for i in range(_N):
        refs.add_owned(oid(i))
        refs.add_local(oid(i), None)
        local[i] = 1

    def held_by_values(j: int) -> int:
        return sum(inside[i].count(j) for i in range(_N) if i not in freed)

    def needed(j: int) -> bool:
        return bool(local[j] or submitted[j] or borrowers[j] or held_by_values(j))

    for kind, i, j in ops:
        if i in freed:
            continue
        if kind == "add":
            refs.add_local(oid(i), None)
            local[i] += 1
        elif kind == "drop" and local[i] > 0:
            refs.drop_local(oid(i))
            local[i] -= 1
        elif kind == "submit":
            refs.add_submitted([(oid(i), None)])
            submitted[i] += 1
        elif kind == "finish" and submitted[i] > 0:
            refs.remove_submitted([oid(i)])
            submitted[i] -= 1
        elif kind == "contain" and j not in freed and j != i and i not in inside[j]:
            refs.add_contained(oid(i), [(oid(j), None)])  # no cycles, as values are immutable
            inside[i].append(j)
        elif kind == "borrow":
            assert refs.add_borrower(oid(i), workers[j], N1)
            borrowers[i][j] = borrowers[i].get(j, 0) + 1
        elif kind == "unborrow" and j in borrowers[i]:
            refs.remove_borrower(oid(i), workers[j])
            borrowers[i][j] -= 1
            if not borrowers[i][j]:
                del borrowers[i][j]
        elif kind == "collect":
            for f in refs.collect():
                index = next(k for k in range(_N) if oid(k) == f.object_id)
                assert f.owned
                assert index not in freed, "freed twice"
                freed.add(index)
            for k in range(_N):
                if k in freed:
                    assert not needed(k), f"object {k} freed while needed"
        for k in range(_N):
            assert refs.local_count(oid(k)) >= 0
            if k not in freed:
                assert refs.local_count(oid(k)) == local[k]
    for f in refs.collect():
        freed.add(next(k for k in range(_N) if oid(k) == f.object_id))
    # Everything nobody needs is freed by the end; everything else is still owned.
    for k in range(_N):
        assert (k in freed) == (not needed(k))
        assert refs.is_owned(oid(k)) == (k not in freed)


def test_a_late_done_for_old_registrations_cannot_cancel_a_newer_one() -> None:
    refs = ReferenceCounter()
    refs.add_owned(oid(0))
    refs.add_borrower(oid(0), B1, N1)  # B1 loaded a ref itself
    refs.add_borrower(oid(0), B1, N1)  # a worker returned the ref to B1 and registered it
    refs.remove_borrower(oid(0), B1, 1)  # B1's done for its own registration, arriving late
    assert refs.collect() == []  # the worker's registration for B1 still holds
    refs.remove_borrower(oid(0), B1, 1)
    assert refs.collect() == [Freed(oid(0), owned=True)]


def test_borrower_side_counts_its_registrations() -> None:
    refs = ReferenceCounter()
    me = WorkerID.from_random()
    refs.add_local(oid(1), OWNER)
    refs.mark_registered([oid(1)])  # its own registration
    refs.add_owned(oid(2))
    refs.add_local(oid(2), None)
    refs.add_returned(oid(2), [(oid(1), OWNER)], me)  # and one a worker made for it
    refs.drop_local(oid(1))
    refs.drop_local(oid(2))
    freed = refs.collect()
    assert Freed(oid(1), owned=False, owner=OWNER, registrations=2) in freed


def test_two_results_returning_an_owned_ref_each_hold_it() -> None:
    refs = ReferenceCounter()
    me = WorkerID.from_random()
    for i in (0, 1, 2):
        refs.add_owned(oid(i))
    refs.add_local(oid(1), None)
    refs.add_local(oid(2), None)
    refs.add_borrower(oid(0), me, N1)  # each worker registered us with ourselves
    refs.add_borrower(oid(0), me, N1)
    refs.add_returned(oid(1), [(oid(0), None)], me)
    assert refs.collect() == []  # the second registration still stands for the second result
    refs.add_returned(oid(2), [(oid(0), None)], me)
    refs.drop_local(oid(1))
    assert refs.collect() == [Freed(oid(1), owned=True)]
    refs.drop_local(oid(2))
    assert {f.object_id for f in refs.collect()} == {oid(2), oid(0)}
