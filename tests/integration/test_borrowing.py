"""Refs that travel inside values: their objects live exactly as long as someone holds them.

Each test makes a large (store-resident) object, sends a ref to it somewhere inside a
value, drops the originals, and checks the object is still there while anyone holds it
and gone from the store once nobody does.
"""

from __future__ import annotations

import asyncio
import gc
import os
import pickle
import threading
import time

import numpy as np
import pytest

import manta as ray
from manta._private.api.context import current_worker
from manta._private.rpc.messages import GetMemoryReport
from manta.exceptions import GetTimeoutError, OwnerDiedError, RayTaskError, TaskCancelledError
from tests.integration.conftest import run_driver
from tests.polling import process_gone, wait_until

pytestmark = pytest.mark.timeout(120)

MB = 1024 * 1024


def _in_store(hex_id: str) -> bool:
    report = current_worker().call_node(GetMemoryReport())
    return any(obj.object_id.hex() == hex_id for obj in report.objects)


def _eventually(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        gc.collect()
        current_worker().objects.collect_references()
        time.sleep(0.05)
    return True


def _stays(predicate, seconds: float = 1.5) -> bool:
    """``predicate`` holds throughout ``seconds`` (frees are collected every 0.5 s)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        gc.collect()
        current_worker().objects.collect_references()
        if not predicate():
            return False
        time.sleep(0.1)
    return True


@ray.remote
class Keeper:
    def __init__(self):
        self.kept = None

    def keep(self, box):
        self.kept = box
        return True

    def total(self):
        return float(ray.get(self.kept[0]).sum())

    def drop(self):
        self.kept = None
        return True

    def make(self):
        self.mine = ray.put(np.ones(MB // 8))
        return [self.mine]


def _kept_by_an_actor():
    """(an actor holding the only ref to a stored object, the object's id hex)."""
    ref = ray.put(np.ones(MB // 8))
    keeper = Keeper.remote()
    assert ray.get(keeper.keep.remote([ref]))
    return keeper, ref.hex()


def test_ref_nested_in_an_argument_lives_while_an_actor_keeps_it(cluster):
    keeper, key = _kept_by_an_actor()
    assert _stays(lambda: _in_store(key)), "freed while the actor holds a ref to it"
    assert ray.get(keeper.total.remote()) == MB // 8
    assert ray.get(keeper.drop.remote())
    assert _eventually(lambda: not _in_store(key)), "not freed after the actor dropped its ref"
    ray.kill(keeper)


def test_borrower_that_dies_releases_the_object(cluster):
    keeper, key = _kept_by_an_actor()
    assert _stays(lambda: _in_store(key), 1.0)
    ray.kill(keeper)
    assert _eventually(lambda: not _in_store(key)), "a dead borrower still keeps the object"


def test_ref_created_in_a_task_and_returned_inside_a_list(cluster):
    @ray.remote
    def make():
        return [ray.put(np.full(MB // 8, 3.0))]

    outer = make.remote()
    (inner,) = ray.get(outer)
    key = inner.hex()
    time.sleep(1.0)  # the worker's own ref is long gone: only the returned list holds it
    assert float(ray.get(inner).sum()) == 3.0 * (MB // 8)
    del outer
    assert _stays(lambda: _in_store(key), 1.0), "freed while the driver holds the inner ref"
    del inner
    assert _eventually(lambda: not _in_store(key)), "the worker never freed its object"


def test_argument_ref_returned_to_its_owner_survives_the_worker_letting_go(cluster):
    @ray.remote
    def echo(box):
        return box

    ref = ray.put(np.ones(MB // 8))
    key = ref.hex()
    boxed = echo.remote([ref])
    del ref
    (again,) = ray.get(boxed)
    del boxed
    assert _stays(lambda: _in_store(key), 1.0)
    assert float(ray.get(again).sum()) == MB // 8
    del again
    assert _eventually(lambda: not _in_store(key))


def test_ref_passed_on_through_a_chain_of_tasks(cluster):
    @ray.remote
    def last(box):
        time.sleep(1.0)  # by now the first task and the driver have let go
        return float(ray.get(box[0]).sum())

    @ray.remote
    def first(box):
        return last.remote(box)

    ref = ray.put(np.ones(MB // 8))
    key = ref.hex()
    outer = first.remote([ref])
    del ref
    inner = ray.get(outer)
    assert ray.get(inner) == MB // 8
    del outer, inner
    assert _eventually(lambda: not _in_store(key))


def test_value_holding_refs_releases_them_when_freed(cluster):
    inner = ray.put(np.ones(MB // 8))
    key = inner.hex()
    outer = ray.put({"x": [inner]})
    del inner
    assert _stays(lambda: _in_store(key), 1.0)
    assert float(ray.get(ray.get(outer)["x"][0]).sum()) == MB // 8
    del outer
    assert _eventually(lambda: not _in_store(key))


def test_worker_put_holding_refs_returned_to_the_driver(cluster):
    @ray.remote
    def wrap(box):
        return ray.put(box)  # a worker-owned value with the driver's ref inside

    ref = ray.put(np.ones(MB // 8))
    key = ref.hex()
    wrapped = ray.get(wrap.remote([ref]))
    del ref
    assert _stays(lambda: _in_store(key), 1.0)
    (again,) = ray.get(wrapped)
    assert float(ray.get(again).sum()) == MB // 8
    del wrapped, again
    assert _eventually(lambda: not _in_store(key))


def test_ref_pickled_outside_manta_is_held_until_the_pickle_is_loaded(cluster):
    ref = ray.put(np.ones(MB // 8))
    blob = pickle.dumps(ref)
    key = ref.hex()
    del ref
    assert _stays(lambda: _in_store(key), 1.0), "a plainly pickled ref must keep its object"

    @ray.remote
    def load(raw):
        return float(ray.get(pickle.loads(raw)).sum())

    assert ray.get(load.remote(blob)) == MB // 8
    # The loader borrowed it, released the pickle's hold, and let go when it finished.
    assert _eventually(lambda: not _in_store(key))


def test_ref_captured_by_a_remote_function_stays_for_every_worker(cluster):
    def make():
        captured = ray.put(np.ones(MB // 8))

        @ray.remote
        def use():
            return float(ray.get(captured).sum())

        return use, captured.hex()

    use, key = make()
    assert ray.get([use.remote() for _ in range(4)]) == [MB // 8] * 4
    del use  # the last ref in this process: the exported function keeps the object
    assert _stays(lambda: _in_store(key), 1.0)


def test_out_of_band_pickling_can_be_forbidden():
    result = run_driver(
        """
        import pickle, manta
        manta.init(num_cpus=1)
        ref = manta.put(1)
        try:
            pickle.dumps(ref)
        except manta.exceptions.OufOfBandObjectRefSerializationException as e:
            print("refused:", e)
        print(manta.get(manta.put([ref]))[0] == ref)  # inside Manta's own pickling: fine
        manta.shutdown()
        """,
        env={"MANTA_ALLOW_OUT_OF_BAND_OBJECT_REF_SERIALIZATION": "0"},
    )
    assert result.returncode == 0, result.stderr
    assert "refused: The ObjectRef" in result.stdout and "pickled outside Manta" in result.stdout
    assert result.stdout.strip().endswith("True")


def test_copying_a_ref_does_not_pin_its_object(cluster):
    import copy

    ref = ray.put(np.ones(MB // 8))
    key = ref.hex()
    duplicate = copy.deepcopy(copy.copy(ref))
    assert duplicate == ref
    del ref
    assert ray.get(duplicate).sum() == MB // 8
    del duplicate
    assert _eventually(lambda: not _in_store(key))


def test_inner_ref_of_a_dead_owner_raises_owner_died(cluster):
    keeper = Keeper.remote()
    (inner,) = ray.get(keeper.make.remote())
    ray.kill(keeper)
    owner_pid = inner.owner_address().pid
    assert _eventually(lambda: process_gone(owner_pid)), "the actor's process outlived ray.kill"
    with pytest.raises(OwnerDiedError) as info:
        ray.get(inner, timeout=30)
    text = str(info.value)
    assert inner.hex() in text and "(owner at 127.0.0.1:" in text and "pid=" in text, text


def test_async_actor_awaits_a_large_result(cluster):
    @ray.remote
    def big():
        return np.ones(MB // 4)

    @ray.remote
    class Waiter:
        async def total(self, box):
            value = await box[0]
            await asyncio.sleep(0)
            return float(value.sum())

    waiter = Waiter.remote()
    assert ray.get(waiter.total.remote([big.remote()]), timeout=30) == MB // 4
    ray.kill(waiter)


def test_memory_report_says_why_an_object_is_alive(cluster):
    from manta.util import memory_summary

    inner = ray.put(np.ones(MB // 8))
    outer = ray.put([inner])
    keeper = Keeper.remote()
    assert ray.get(keeper.keep.remote([inner]))
    line = next(line for line in memory_summary().splitlines() if line.startswith(inner.hex()))
    assert "local ref x1" in line and "inside a value x1" in line, line
    assert "borrowed by 1 process(es)" in line, line
    ray.kill(keeper)
    del outer


class Boom(Exception):
    def __init__(self, ref):
        super().__init__("boom")
        self.ref = ref


def test_ref_inside_a_task_exception_stays_readable(cluster):
    @ray.remote(max_retries=0)
    def fail():
        raise Boom(ray.put(np.full(MB // 8, 5.0)))

    with pytest.raises(Boom) as info:
        ray.get(fail.remote())
    time.sleep(1.0)  # the worker's own ref is long gone
    assert float(ray.get(info.value.ref)[0]) == 5.0


def test_refs_returned_by_two_tasks_stay_until_both_results_go(cluster):
    @ray.remote
    def echo(box):
        return box

    ref = ray.put(np.ones(MB // 8))
    key = ref.hex()
    first, second = echo.remote([ref]), echo.remote([ref])
    del ref
    ray.get([first, second])
    del first
    assert _stays(lambda: _in_store(key), 1.0)
    assert float(ray.get(ray.get(second)[0]).sum()) == MB // 8
    del second
    assert _eventually(lambda: not _in_store(key))


@ray.remote
def _after_gate(gate):
    while not os.path.exists(gate):
        time.sleep(0.01)
    return b"x" * 50_000


@ray.remote
def _len(value):
    return len(value)


@ray.remote
class _Poller:
    """Borrows a ref for one call, gives up waiting for it, and drops it."""

    def poll(self, refs):
        try:
            ray.get(refs[0], timeout=0.1)
        except GetTimeoutError:
            return "timed out"
        return "ready"

    def fetching_and_held(self):
        worker = current_worker()
        worker.objects.collect_references()
        return len(worker.objects._fetching), len(worker.memory_store)


def test_a_borrower_that_gave_up_on_an_object_keeps_no_copy_of_it(cluster, tmp_path):
    gate = str(tmp_path / "gate")
    poller = _Poller.remote()
    assert ray.get(poller.fetching_and_held.remote()) == (0, 0)
    refs = [_after_gate.remote(gate) for _ in range(2)]
    assert [ray.get(poller.poll.remote([r])) for r in refs] == ["timed out"] * 2
    open(gate, "w").close()
    ray.get(refs)
    # The owner answers the borrower's fetch once the value is ready; the borrower, which
    # holds no ref to it any more, does not keep it (it would never be freed).
    wait_until(lambda: ray.get(poller.fetching_and_held.remote())[0] == 0, what="the fetches to end")
    assert ray.get(poller.fetching_and_held.remote()) == (0, 0)


def test_callbacks_waiting_for_an_object_go_when_it_is_freed_unready(cluster, tmp_path):
    gate = str(tmp_path / "gate")
    worker = current_worker()
    poller = _Poller.remote()
    asked = _after_gate.remote(gate)
    assert ray.get(poller.poll.remote([asked])) == "timed out"  # the borrower's wait stays
    argument = _after_gate.remote(gate)
    consumer = _len.remote(argument)  # waits for its argument here
    ray.cancel(consumer)
    with pytest.raises(TaskCancelledError):
        ray.get(consumer, timeout=30)
    ids = [asked.id, argument.id]
    assert all(i in worker.memory_store._callbacks for i in ids)
    del asked, argument, consumer

    def freed():
        worker.objects.collect_references()
        return not any(worker.references.knows(i) for i in ids)

    wait_until(freed, what="both objects to be freed")
    assert not any(i in worker.memory_store._callbacks for i in ids)
    open(gate, "w").close()


class _PickledAfterGate:
    """A return value whose pickling waits for a file: the task's reply is held back."""

    def __init__(self, gate):
        self.gate = gate

    def __reduce__(self):
        deadline = time.monotonic() + 30
        while not os.path.exists(self.gate) and time.monotonic() < deadline:
            time.sleep(0.01)
        return (int, (0,))


class _CarriesRefs(Exception):
    def __init__(self, refs):
        super().__init__("carries refs")
        self.refs = refs


@ray.remote(num_returns=2)
def _lends_then_waits(refs, gate):
    return refs, _PickledAfterGate(gate)


@ray.remote(num_returns=2, max_retries=0)
def _raises_with(refs):
    raise _CarriesRefs(refs)


def test_an_error_on_several_returns_gives_back_what_it_borrowed_once_each(cluster, tmp_path):
    # An error fills every return with the exception (and the refs in it): the worker lends
    # them once per return, as the owner gives each return's back; lent once and given back
    # twice, the error cancelled another task's lend of the same object, still under way.
    gate = str(tmp_path / "gate")
    worker = current_worker()
    x = ray.put(b"z" * 100)

    def lends_to_me() -> int:
        entry = worker.references._entries.get(x.id)
        return 0 if entry is None else entry.borrowers.get(worker.worker_id, (None, 0))[1]

    held, _slow = _lends_then_waits.remote([x], gate)  # its first return lent x to us
    wait_until(lambda: lends_to_me() == 1, what="the first task's lend")
    with pytest.raises(_CarriesRefs):
        ray.get(_raises_with.remote([x])[0], timeout=30)
    assert lends_to_me() == 1  # the first task's lend is still there
    open(gate, "w").close()
    assert ray.get(held, timeout=30) == [x]


@ray.remote(num_returns=2)
def _returns_refs_then_a_lock(refs):
    return refs, threading.Lock()


def test_a_ref_returned_beside_a_return_that_fails_is_freed_with_it(cluster):
    # The first return (holding x) is kept, as in Ray; x lives while it does, and is freed
    # after (it was lent for a return that then failed, and never given back).
    x = ray.put(np.zeros(MB // 8 + 1))
    key = x.hex()
    holder, failed = _returns_refs_then_a_lock.remote([x])
    with pytest.raises(RayTaskError):
        ray.get(failed, timeout=30)
    assert len(ray.get(holder, timeout=30)) == 1
    del x
    assert _stays(lambda: _in_store(key), 1.0), "freed while a return holds a ref to it"
    del holder, failed
    assert _eventually(lambda: not _in_store(key)), "x was never freed"
