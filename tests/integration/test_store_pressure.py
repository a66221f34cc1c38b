"""A small object store under pressure: spilling and restoring, bounded use, full-store
errors that name the holders, and writers that die half way."""

from __future__ import annotations

import gc
import os
import time

import numpy as np
import pytest

import manta as ray
from manta._private.api.context import current_worker
from manta._private.common.ids import ObjectID
from manta._private.rpc.messages import CreateObject, GetMemoryReport, GetNodeStats
from manta.exceptions import ObjectFreedError, ObjectStoreFullError
from tests.integration.conftest import run_driver
from tests.tmpfs import needs_unshare, run_on_tiny_tmpfs

pytestmark = pytest.mark.timeout(180)

MB = 1024 * 1024
STORE = 256 * MB


@pytest.fixture(scope="module")
def small_store():
    # Puts that find no room give up after a second here, instead of the default ten.
    os.environ["MANTA_STORE_FULL_TIMEOUT_S"] = "1"
    try:
        context = ray.init(num_cpus=2, object_store_memory=STORE)
    finally:
        del os.environ["MANTA_STORE_FULL_TIMEOUT_S"]
    yield context
    ray.shutdown()


def _stats():
    return current_worker().call_node(GetNodeStats())


def _report():
    return current_worker().call_node(GetMemoryReport())


def _settle(timeout: float = 15.0) -> None:
    """Wait until every dropped object has left the store."""
    deadline = time.monotonic() + timeout
    while _stats().objects and time.monotonic() < deadline:
        gc.collect()
        current_worker().objects.collect_references()
        time.sleep(0.05)


def test_putting_three_times_the_store_spills_and_reads_everything_back(small_store):
    _settle()
    chunk = 16 * MB
    refs = [ray.put(np.full(chunk // 8, i, dtype=np.int64)) for i in range(3 * STORE // chunk)]
    stats = _stats()
    assert stats.spilled_bytes >= STORE, f"only {stats.spilled_bytes / MB:.0f} MB spilled"
    for i in range(len(refs)):
        value = ray.get(refs[i])
        assert value.shape == (chunk // 8,) and value[0] == i and value[-1] == i, f"object {i} is wrong"
        del value

    # Tasks read spilled objects too.

    @ray.remote
    def first(a):
        return int(a[0])

    assert ray.get([first.remote(r) for r in refs[:4]]) == [0, 1, 2, 3]
    del refs
    _settle()
    stats = _stats()
    assert stats.objects == 0 and stats.spilled_bytes == 0, "objects or spill files outlived their refs"


def test_creating_and_dropping_ten_gigabytes_keeps_the_store_bounded(small_store):
    _settle()
    size = 10 * MB
    payload = np.ones(size // 8)
    for _ in range(1024):  # 10 GiB in all, 40 times the store: it fits only if drops free
        ref = ray.put(payload)
        del ref
    stats = _stats()
    assert stats.spilled_bytes == 0, "dropped objects were spilled instead of freed"
    _settle()
    assert _stats().objects == 0


def test_a_put_larger_than_the_store_names_the_sizes(small_store):
    with pytest.raises(ObjectStoreFullError) as info:
        ray.put(np.zeros((STORE + 16 * MB) // 8))
    text = str(info.value)
    assert "more than the whole object store (256.0 MiB" in text, text
    assert "272.0 MiB" in text, text
    assert ray.get(ray.put(b"x" * MB)) == b"x" * MB  # the store is fine afterwards


def test_a_full_store_of_pinned_objects_names_the_biggest_holders(small_store):
    _settle()
    held = [ray.put(np.full(60 * MB // 8, i)) for i in range(3)]
    views = [ray.get(r) for r in held]  # readers pin them: nothing can be spilled
    with pytest.raises(ObjectStoreFullError) as info:
        ray.put(np.zeros(100 * MB // 8))
    text = str(info.value)
    assert held[0].hex() in text or held[1].hex() in text or held[2].hex() in text, text
    del views
    gc.collect()
    # Once the readers are gone the same put goes through (the others spill).
    ref = ray.put(np.zeros(100 * MB // 8))
    assert ray.get(ref).nbytes == 100 * MB
    del ref, held


def test_a_writer_killed_half_way_leaves_nothing_behind(small_store):
    _settle()
    before = _stats().object_bytes

    @ray.remote(max_retries=0)
    def die_while_writing(size):
        worker = current_worker()
        oid = ObjectID.for_put(worker.context.task_id, 1)
        created = worker.call_node(CreateObject(oid, size, worker.worker_id))
        view = worker.objects._arena().writable_view(created.offset, size // 2)
        view[:] = b"\xab" * (size // 2)  # half written, never sealed
        os._exit(1)

    with pytest.raises(ray.exceptions.WorkerCrashedError):
        ray.get(die_while_writing.remote(64 * MB))
    deadline = time.monotonic() + 15
    while _stats().object_bytes != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _stats().object_bytes == before, "the dead writer's allocation leaked"
    assert not [o for o in _report().objects if o.size >= 64 * MB], "a partial object is listed"
    # The space is usable again.
    big = ray.put(np.ones(200 * MB // 8))
    assert float(ray.get(big)[-1]) == 1.0
    del big


def test_get_of_a_freed_object_says_so(small_store):
    ref = ray.put(np.ones(MB))
    raw, owner = ref.binary(), ref.owner_address()
    del ref
    _settle()
    again = ray.ObjectRef(raw, owner)
    with pytest.raises(ObjectFreedError, match="freed"):
        ray.get(again, timeout=10)


def test_too_small_a_store_is_refused_before_anything_starts():
    result = run_driver(
        """
        import manta
        try:
            manta.init(num_cpus=1, object_store_memory=10 * 1024 * 1024)
        except ValueError as e:
            print("refused:", e)
        print("initialized:", manta.is_initialized())
        """
    )
    assert result.returncode == 0, result.stderr
    assert "refused: Attempting to cap object store memory usage at 10485760 bytes" in result.stdout
    assert "initialized: False" in result.stdout


_FULL_DISK_DRIVER = """
import sys, numpy as np, manta
spill_dir = sys.argv[1]
MB = 1024 * 1024
manta.init(num_cpus=1, object_store_memory=80 * MB)
held = [manta.put(np.full(30 * MB // 8, i)) for i in range(2)]
try:
    held.append(manta.put(np.full(30 * MB // 8, 2)))  # must spill 30 MB into a 16 MB disk
    print("no error")
except (manta.exceptions.OutOfDiskError, manta.exceptions.ObjectStoreFullError) as e:
    print("error:", type(e).__name__, e)
print("intact:", [int(manta.get(r)[-1]) for r in held])
del held
print("after:", int(manta.get(manta.put(np.full(30 * MB // 8, 7)))[0]), manta.nodes()[0]["Alive"])
manta.shutdown()
"""


@needs_unshare
def test_a_disk_that_fills_while_spilling_fails_the_put_and_nothing_else(tmp_path):
    tiny = tmp_path / "spill"
    env = {"MANTA_SPILL_DIR": str(tiny), "MANTA_STORE_FULL_TIMEOUT_S": "2"}
    proc = run_on_tiny_tmpfs(tiny, "16m", _FULL_DISK_DRIVER, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "error: ObjectStoreFullError" in out, out
    assert f"Spilling to {tiny} failed" in out and "only 16.0 MiB is free" in out, out
    assert "intact: [0, 1]" in out, out
    assert "after: 7 True" in out, out


def _spilled_files(refs) -> dict[str, str]:
    """Object id hex -> spill file, for those of ``refs`` that are only on disk now."""
    wanted = {r.hex() for r in refs}
    return {
        o.object_id.hex(): o.spill_path
        for o in _report().objects
        if o.object_id.hex() in wanted and o.state == "spilled" and o.spill_path
    }


def _produce(i, log_dir):
    """A 16 MiB result; each run leaves a file in ``log_dir`` (see ``_runs``)."""
    with open(os.path.join(log_dir, f"{i}-{time.time_ns()}"), "w"):
        pass
    return np.full(16 * MB // 8, i, dtype=np.int64)


def _runs(log_dir, i) -> int:
    return len([f for f in os.listdir(log_dir) if f.startswith(f"{i}-")])


def test_a_lost_task_result_is_made_again_from_lineage(small_store, tmp_path):
    _settle()

    produce = ray.remote(max_retries=2)(_produce)
    refs = [produce.remote(i, str(tmp_path)) for i in range(24)]  # 384 MiB: some must spill
    ray.wait(refs, num_returns=len(refs), timeout=60)
    spilled = _spilled_files(refs)
    assert spilled, "nothing was spilled"
    victim = next(r for r in refs if r.hex() in spilled)
    index = refs.index(victim)
    os.unlink(spilled[victim.hex()])  # the only copy is gone
    value = ray.get(victim, timeout=60)
    assert value[0] == index and value[-1] == index
    assert _runs(tmp_path, index) == 2, f"produce({index}) ran {_runs(tmp_path, index)} times"
    del value, victim, refs
    _settle()


def test_a_lost_put_cannot_be_made_again_and_says_why(small_store):
    _settle()
    refs = [ray.put(np.full(16 * MB // 8, i, dtype=np.int64)) for i in range(24)]
    spilled = _spilled_files(refs)
    victim = next(r for r in refs if r.hex() in spilled)
    os.unlink(spilled[victim.hex()])
    with pytest.raises(ray.exceptions.ObjectLostError, match=r"made by put\(\)") as info:
        ray.get(victim, timeout=30)
    assert isinstance(info.value, ray.exceptions.ObjectReconstructionFailedError)
    others = [r for r in refs if r != victim]
    assert [int(ray.get(r)[0]) for r in others[:3]] == [refs.index(r) for r in others[:3]]
    del refs, others, victim
    _settle()


def test_a_borrower_that_finds_an_object_lost_has_its_owner_rebuild_it(small_store, tmp_path):
    _settle()

    produce = ray.remote(max_retries=1)(_produce)

    @ray.remote
    def first_of(box):
        return int(ray.get(box[0])[0])  # a borrowed ref: the driver owns it

    refs = [produce.remote(i, str(tmp_path)) for i in range(24)]
    ray.wait(refs, num_returns=len(refs), timeout=60)
    spilled = _spilled_files(refs)
    victim = next(r for r in refs if r.hex() in spilled)
    index = refs.index(victim)
    os.unlink(spilled[victim.hex()])
    assert ray.get(first_of.remote([victim]), timeout=60) == index
    assert _runs(tmp_path, index) == 2
    del victim, refs
    _settle()


def test_a_reader_that_dies_holding_a_view_leaves_the_store_working(small_store):
    _settle()
    ref = ray.put(np.ones(32 * MB // 8))
    key = ref.hex()

    @ray.remote(max_retries=0)
    def read_and_die(box):
        view = ray.get(box[0])  # pinned by this worker while the view lives
        assert view[0] == 1.0
        os._exit(1)

    with pytest.raises(ray.exceptions.WorkerCrashedError):
        ray.get(read_and_die.remote([ref]))
    assert float(ray.get(ref)[-1]) == 1.0  # still readable
    del ref
    deadline = time.monotonic() + 15
    while any(o.object_id.hex() == key for o in _report().objects) and time.monotonic() < deadline:
        gc.collect()
        current_worker().objects.collect_references()
        time.sleep(0.05)
    assert not any(o.object_id.hex() == key for o in _report().objects), "the dead reader's pin kept it"


def test_a_lost_argument_is_made_again_before_its_task_runs_again(small_store, tmp_path):
    _settle()
    produce = ray.remote(max_retries=2)(_produce)

    @ray.remote(max_retries=2)
    def double(a):
        return a * 2

    source = [produce.remote(i, str(tmp_path)) for i in range(12)]
    doubled = [double.remote(r) for r in source]
    ray.wait(doubled, num_returns=len(doubled), timeout=60)
    spilled = _spilled_files(source + doubled)
    index = next(i for i in range(12) if source[i].hex() in spilled and doubled[i].hex() in spilled)
    os.unlink(spilled[source[index].hex()])  # the argument and the result: both gone
    os.unlink(spilled[doubled[index].hex()])
    value = ray.get(doubled[index], timeout=60)
    assert value[0] == 2 * index
    assert _runs(tmp_path, index) == 2
    del value, source, doubled
    _settle()


def test_both_lost_results_of_a_two_return_task_come_back_from_one_run(small_store, tmp_path):
    _settle()

    @ray.remote(num_returns=2, max_retries=1)
    def pair(i, log_dir):
        return _produce(i, log_dir), _produce(i, log_dir)

    pairs = [pair.remote(i, str(tmp_path)) for i in range(10)]
    flat = [r for p in pairs for r in p]
    ray.wait(flat, num_returns=len(flat), timeout=60)
    spilled = _spilled_files(flat)
    index = next(i for i, (a, b) in enumerate(pairs) if a.hex() in spilled and b.hex() in spilled)
    for ref in pairs[index]:
        os.unlink(spilled[ref.hex()])
    assert [int(ray.get(r, timeout=60)[0]) for r in pairs[index]] == [index, index]
    assert _runs(tmp_path, index) == 4  # two files per run: run once, then once again
    del pairs, flat
    _settle()
