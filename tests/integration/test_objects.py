"""Objects end to end: put/get, zero-copy reads of large values, freeing store files."""

from __future__ import annotations

import gc
import mmap
import os
import threading

import numpy as np
import pytest

import manta as ray
from manta._private.api.context import current_worker
from manta._private.rpc.messages import GetMemoryReport, GetNodeStats
from tests.integration.conftest import run_driver
from tests.polling import poll

MB = 1024 * 1024


def _arena_path() -> str:
    return current_worker().session.arena_path


def _store_states() -> dict[str, str]:
    """Object id hex -> its state in this node's store ("in memory", "spilled", ...)."""
    report = current_worker().call_node(GetMemoryReport())
    return {obj.object_id.hex(): obj.state for obj in report.objects}


def _in_store(ref) -> bool:
    return ref.hex() in _store_states()


def _store_bytes() -> int:
    return current_worker().call_node(GetNodeStats()).object_bytes


def _backing_buffer(arr: np.ndarray):
    """Walk ``.base`` from a numpy array to whatever finally holds its memory."""
    base = arr
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    return base


def _mapped_from(arr: np.ndarray, path: str) -> bool:
    """Whether ``arr``'s data lies in a mapping of the file ``path`` (per /proc/self/maps)."""
    start = arr.__array_interface__["data"][0]
    return _range_mapped_from(start, start + arr.nbytes, path)


def _range_mapped_from(start: int, end: int, path: str) -> bool:
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].strip() == path:
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                if lo <= start and end <= hi:
                    return True
    return False


def test_put_get_small_values(cluster):
    values = [0, -3, 2.5, "text", b"bytes", True, (1, 2), [1, "a"], {"k": {1, 2}}, frozenset({3})]
    refs = [ray.put(v) for v in values]
    assert all(isinstance(r, ray.ObjectRef) for r in refs)
    assert len(set(refs)) == len(refs)
    assert ray.get(refs) == values
    assert ray.get(refs[3]) == "text"


def test_put_get_none(cluster):
    ref = ray.put(None)
    assert isinstance(ref, ray.ObjectRef)
    assert ray.get(ref) is None


def test_put_get_nested_structure(cluster):
    value = {
        "list": [1, [2, [3, [4, {"deep": (5, 6)}]]]],
        "tuple": ({"a": None}, [b"x" * 10]),
        "arr": np.arange(5),
        "empty": {"l": [], "d": {}, "t": ()},
    }
    got = ray.get(ray.put(value))
    assert got["list"] == value["list"]
    assert got["tuple"] == value["tuple"]
    assert got["empty"] == value["empty"]
    np.testing.assert_array_equal(got["arr"], value["arr"])


def test_large_numpy_put_get_is_zero_copy_and_read_only(cluster):
    arr = np.random.default_rng(0).random(50 * MB // 8)
    ref = ray.put(arr)
    assert _store_states().get(ref.hex()) == "in memory", "a 50 MB value should live in the node store"
    got = ray.get(ref)
    np.testing.assert_array_equal(got, arr)
    assert got.dtype == arr.dtype
    assert got.shape == arr.shape
    assert not got.flags.writeable
    assert not got.flags.owndata
    with pytest.raises(ValueError, match="read-only"):
        got[0] = 1.0
    backing = _backing_buffer(got)
    assert isinstance(backing, (memoryview, mmap.mmap)), type(backing)
    if isinstance(backing, memoryview):
        assert backing.readonly
        assert isinstance(backing.obj, mmap.mmap), type(backing.obj)
    # The array's memory lies inside this process's mapping of the node's arena.
    assert _mapped_from(got, _arena_path())
    again = ray.get(ref)
    assert _mapped_from(again, _arena_path())
    assert not np.shares_memory(got, arr)


def test_large_array_returned_from_task_is_read_only(cluster):
    @ray.remote
    def make(n):
        return np.arange(n, dtype=np.int64)

    n = 4 * MB  # 32 MB
    ref = make.remote(n)
    got = ray.get(ref)
    assert got.shape == (n,)
    assert got[0] == 0 and got[-1] == n - 1
    assert int(got.sum()) == n * (n - 1) // 2
    assert not got.flags.writeable
    assert isinstance(_backing_buffer(got), (memoryview, mmap.mmap))
    assert _mapped_from(got, _arena_path())


def test_put_ref_of_large_array_passed_to_several_tasks(cluster):
    arr = np.arange(3 * MB, dtype=np.float64)  # 24 MB
    ref = ray.put(arr)

    @ray.remote
    def stats(a, i):
        return i, a.shape, float(a[i]), float(a.sum()), a.flags.writeable

    results = ray.get([stats.remote(ref, i) for i in range(6)], timeout=60)
    for i, (idx, shape, item, total, writeable) in enumerate(results):
        assert idx == i
        assert shape == arr.shape
        assert item == float(i)
        assert total == float(arr.sum())
        assert writeable is False
    # The driver's ref still works after the tasks are done with it.
    np.testing.assert_array_equal(ray.get(ref), arr)


def test_store_object_freed_when_last_ref_dropped(cluster):
    ref = ray.put(np.ones(5 * MB // 8))
    key = ref.hex()
    assert _in_store(ref)
    copy = ray.ObjectRef(ref.binary())  # a second handle to the same object
    del ref
    gc.collect()
    assert ray.get(copy).sum() == 5 * MB // 8
    assert key in _store_states()
    del copy
    gc.collect()
    assert poll(lambda: key not in _store_states(), timeout=15), f"{key} outlived its refs"


def test_gotten_value_keeps_its_memory_until_dropped(cluster):
    ref = ray.put(np.ones(5 * MB // 8))
    key = ref.hex()
    value = ray.get(ref)
    del ref
    gc.collect()
    current_worker().objects.collect_references()
    # The owner freed it, but the reader's pin keeps the memory (and the array) valid.
    assert key in _store_states()
    assert float(value.sum()) == 5 * MB // 8
    del value
    gc.collect()
    assert poll(lambda: key not in _store_states(), timeout=15), f"{key} outlived its last reader"


def test_put_and_drop_loop_keeps_store_bounded(cluster):
    poll(lambda: _store_bytes() < 5 * MB, timeout=15)
    baseline = _store_bytes()
    peak = 0
    size = 20 * MB
    for i in range(40):
        ref = ray.put(np.full(size // 8, i, dtype=np.int64))
        peak = max(peak, _store_bytes() - baseline)
        del ref
    gc.collect()
    assert peak < 10 * size, f"store grew to {peak / MB:.0f} MB over 40 put/drop rounds"
    assert poll(lambda: _store_bytes() - baseline < size, timeout=15), (
        f"{(_store_bytes() - baseline) / MB:.0f} MB still in the store after every ref was dropped"
    )


def test_arrow_table_and_buffer_round_trip_without_a_copy(cluster):
    pa = pytest.importorskip("pyarrow")
    n = 1_000_000
    table = pa.table({"a": np.arange(n), "b": np.ones(n)})
    got = ray.get(ray.put(table))
    assert got.equals(table)
    column = got.column("a").chunks[0].buffers()[1]
    assert _range_mapped_from(column.address, column.address + column.size, _arena_path())
    assert not column.is_mutable
    buffer = ray.get(ray.put(pa.py_buffer(b"z" * MB)))
    assert isinstance(buffer, pa.Buffer) and buffer.to_pybytes() == b"z" * MB
    assert _range_mapped_from(buffer.address, buffer.address + buffer.size, _arena_path())

    @ray.remote
    def total(t):
        return int(np.asarray(t.column("a")).sum())

    assert ray.get(total.remote(table)) == n * (n - 1) // 2


@pytest.mark.parametrize("value", [bytearray(b"abc"), memoryview(b"abc")], ids=["bytearray", "memoryview"])
def test_bytearray_and_memoryview_come_back_as_bytes(cluster, value):
    got = ray.get(ray.put(value))
    assert type(got) is bytes
    assert got == b"abc"


def test_large_bytearray_comes_back_as_bytes(cluster):
    data = bytearray(os.urandom(MB))
    got = ray.get(ray.put(data))
    assert type(got) is bytes
    assert got == data


def test_put_unpicklable_value_raises_type_error(cluster):
    with pytest.raises(TypeError) as info:
        ray.put(threading.Lock())
    assert "lock" in str(info.value).lower(), str(info.value)
    with pytest.raises(TypeError) as info:
        ray.put({"nested": [threading.Lock()]})
    assert "lock" in str(info.value).lower(), str(info.value)
    # As in Ray, the message names the member that does not pickle, found by
    # inspect_serializability.
    assert "Could not serialize the put value" in str(info.value)
    assert "!!! FAIL serialization" in str(info.value)
    assert "non-serializable" in str(info.value)
    # The failure leaves the session usable.
    assert ray.get(ray.put(1)) == 1


def test_put_of_an_object_ref_is_refused(cluster):
    ref = ray.put(1)
    with pytest.raises(TypeError, match="ObjectRef"):
        ray.put(ref)


def test_object_ref_inside_put_value_round_trips(cluster):
    inner_small = ray.put("inner")
    inner_large = ray.put(np.arange(MB))

    @ray.remote
    def produce():
        return 42

    task_ref = produce.remote()
    outer = ray.put({"refs": [inner_small, inner_large], "task": task_ref})
    got = ray.get(outer)
    assert got["refs"] == [inner_small, inner_large]
    assert got["task"] == task_ref
    assert all(isinstance(r, ray.ObjectRef) for r in [*got["refs"], got["task"]])
    assert ray.get(got["refs"][0]) == "inner"
    np.testing.assert_array_equal(ray.get(got["refs"][1]), np.arange(MB))
    assert ray.get(got["task"]) == 42

    @ray.remote
    def unwrap(container):
        return ray.get(container["refs"][0]), float(ray.get(container["refs"][1]).sum())

    assert ray.get(unwrap.remote(outer)) == ("inner", float(np.arange(MB).sum()))


def test_refs_contained_in_put_value_survive_dropping_the_originals(cluster):
    inner = ray.put(np.arange(MB))
    key = inner.hex()
    outer = ray.put([inner])
    del inner
    gc.collect()
    # Apply the drop now, as the periodic collection would: the contained ref keeps it.
    current_worker().objects.collect_references()
    assert key in _store_states()
    (inner_again,) = ray.get(outer)
    np.testing.assert_array_equal(ray.get(inner_again), np.arange(MB))


def test_get_ref_from_previous_session_fails_fast(tmp_path):
    result = run_driver(
        """
        import time
        import numpy as np
        import manta

        manta.init(num_cpus=1, num_gpus=0)
        small = manta.put("small")
        large = manta.put(np.ones(1 << 20))
        manta.shutdown()
        manta.init(num_cpus=1, num_gpus=0)
        try:
            for name, ref in (("small", small), ("large", large)):
                start = time.monotonic()
                try:
                    value = manta.get(ref, timeout=20)
                except Exception as e:
                    took = time.monotonic() - start
                    print(f"RAISED {name} {type(e).__module__}.{type(e).__qualname__} "
                          f"{took:.1f}s: {str(e)[:300]!r}", flush=True)
                else:
                    print(f"RETURNED {name} {type(value).__name__}", flush=True)
        finally:
            manta.shutdown()
        """,
        timeout=60,
        env={"MANTA_TMPDIR": str(tmp_path / "sessions")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith(("RAISED", "RETURNED"))]
    assert len(lines) == 2, result.stdout + result.stderr[-3000:]
    for line in lines:
        assert line.startswith("RAISED"), line
        # A clear error, not the caller's own get timeout expiring.
        assert "GetTimeoutError" not in line, line


def test_ref_from_previous_session_is_not_confused_with_a_new_object(tmp_path):
    # Each session numbers its job and puts from 1 again, so an old ref can carry the same
    # object id as a new session's put; get must not hand back the new object instead.
    result = run_driver(
        """
        import manta

        manta.init(num_cpus=1, num_gpus=0)
        old = manta.put("from the first session")
        manta.shutdown()
        manta.init(num_cpus=1, num_gpus=0)
        try:
            new = manta.put("from the second session")
            print("SAME ID", old.hex() == new.hex(), flush=True)
            try:
                print("RETURNED", repr(manta.get(old, timeout=20)), flush=True)
            except Exception as e:
                print("RAISED", type(e).__name__, flush=True)
        finally:
            manta.shutdown()
        """,
        timeout=60,
        env={"MANTA_TMPDIR": str(tmp_path / "sessions")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RETURNED 'from the second session'" not in result.stdout, result.stdout
    assert "RAISED OwnerDiedError" in result.stdout, result.stdout


def test_call_sites_are_recorded_when_asked():
    result = run_driver(
        """
        import manta
        manta.init(num_cpus=1)
        put_ref = manta.put(1)
        task_ref = manta.remote(lambda: 1).remote()
        print(put_ref.call_site())
        print(task_ref.call_site())
        manta.shutdown()
        """,
        env={"MANTA_RECORD_CALLSITES": "1"},
    )
    assert result.returncode == 0, result.stderr
    put_site, task_site = result.stdout.strip().splitlines()[-2:]
    assert put_site.startswith("<string>:4 in <module>")
    assert task_site.startswith("<string>:5 in <module>")
