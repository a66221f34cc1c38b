"""get, wait, put and the ObjectRef API."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import pickle
import time

import numpy as np
import pytest

import manta as ray
from manta.exceptions import GetTimeoutError, RayTaskError


@ray.remote
def echo(x):
    return x


@ray.remote
def wait_for_file(path, limit=30.0):
    """Stays unfinished until ``path`` exists (or ``limit`` seconds pass)."""
    deadline = time.monotonic() + limit
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    return "finished"


def _release(path):
    with open(path, "w") as f:
        f.write("x")


# -- get ---------------------------------------------------------------------------------


def test_get_single_list_and_empty(cluster):
    refs = [echo.remote(i) for i in range(3)]
    assert ray.get(refs[1]) == 1
    assert ray.get(refs) == [0, 1, 2]
    assert ray.get([]) == []
    assert ray.get([refs[2], refs[0]]) == [2, 0]


def test_get_rejects_non_refs(cluster):
    ref = ray.put(1)
    with pytest.raises(ValueError, match="Invalid type of object refs"):
        ray.get(1)
    with pytest.raises(TypeError, match="Attempting to call `get` on the value 1"):
        ray.get([1])
    with pytest.raises(TypeError, match="Attempting to call `get` on the value x"):
        ray.get([ref, "x"])
    with pytest.raises(ValueError, match="tuple"):
        ray.get((ref,))
    with pytest.raises(ValueError):
        ray.get({"a": ref})


def test_get_timeout(cluster, tmp_path):
    release = str(tmp_path / "release")
    slow = wait_for_file.remote(release)
    with pytest.raises(GetTimeoutError) as info:
        ray.get(slow, timeout=0.2)
    assert isinstance(info.value, TimeoutError)
    with pytest.raises(TimeoutError):
        ray.get([slow], timeout=0)
    _release(release)
    assert ray.get(slow, timeout=30) == "finished"
    assert ray.get(slow, timeout=0) == "finished"
    ready = ray.put("now")
    assert ray.get(ready, timeout=0) == "now"


# -- wait --------------------------------------------------------------------------------


def test_wait_preserves_input_order(cluster, tmp_path):
    release = str(tmp_path / "release")
    blocked = wait_for_file.remote(release)
    p1, p2 = ray.put(1), ray.put(2)
    ready, not_ready = ray.wait([p2, blocked, p1], num_returns=2, timeout=20)
    assert ready == [p2, p1]
    assert not_ready == [blocked]
    ready, not_ready = ray.wait([p1, blocked, p2], num_returns=3, timeout=0.2)
    assert ready == [p1, p2]
    assert not_ready == [blocked]
    _release(release)
    ready, not_ready = ray.wait([blocked, p1], num_returns=2, timeout=30)
    assert ready == [blocked, p1]
    assert not_ready == []


def test_wait_num_returns(cluster):
    refs = [echo.remote(i) for i in range(5)]
    ray.get(refs)
    ready, not_ready = ray.wait(refs)
    assert len(ready) == 1
    assert len(not_ready) == 4
    ready, not_ready = ray.wait(refs, num_returns=3)
    assert len(ready) == 3
    assert len(not_ready) == 2
    assert set(ready) | set(not_ready) == set(refs)
    # each part keeps the input order
    assert ready == [r for r in refs if r in ready]
    assert not_ready == [r for r in refs if r in not_ready]
    ready, not_ready = ray.wait(refs, num_returns=5)
    assert ready == refs
    assert not_ready == []


def test_wait_timeout_zero(cluster, tmp_path):
    release = str(tmp_path / "release")
    blocked = wait_for_file.remote(release)
    assert ray.wait([blocked], timeout=0) == ([], [blocked])
    done = ray.put("done")
    assert ray.wait([done], timeout=0) == ([done], [])
    _release(release)
    ray.get(blocked, timeout=30)


def test_wait_fetch_local_false(cluster):
    ref = echo.remote(np.zeros(200_000))
    ready, not_ready = ray.wait([ref], fetch_local=False, timeout=30)
    assert ready == [ref]
    assert not_ready == []
    assert ray.get(ref).shape == (200_000,)


def test_wait_bad_arguments(cluster):
    ref = ray.put(1)
    other = ray.put(2)
    with pytest.raises(ValueError, match="unique"):
        ray.wait([ref, ref])
    with pytest.raises(ValueError, match="num_returns cannot be greater"):
        ray.wait([ref], num_returns=2)
    with pytest.raises(TypeError, match="single"):
        ray.wait(ref)
    with pytest.raises(TypeError):
        ray.wait((ref, other))
    with pytest.raises(TypeError):
        ray.wait([ref, 1])
    with pytest.raises(ValueError, match="nonnegative"):
        ray.wait([ref], timeout=-1)


def test_wait_empty_list(cluster):
    assert ray.wait([]) == ([], [])
    assert ray.wait([], timeout=0) == ([], [])


# -- futures and asyncio -----------------------------------------------------------------


def test_future(cluster):
    fut = echo.remote(41).future()
    assert isinstance(fut, concurrent.futures.Future)
    assert fut.result(timeout=30) == 41


def test_await_ref(cluster):
    async def main():
        first = await echo.remote("a")
        both = await asyncio.gather(echo.remote(1), echo.remote(2))
        return first, both

    assert asyncio.run(main()) == ("a", [1, 2])


def test_failed_task_future_and_await_raise(cluster):
    @ray.remote
    def fails():
        raise ValueError("future failure")

    fut = fails.remote().future()
    with pytest.raises(ValueError, match="future failure") as info:
        fut.result(timeout=30)
    assert isinstance(info.value, RayTaskError)

    async def main():
        return await fails.remote()

    with pytest.raises(ValueError, match="future failure"):
        asyncio.run(main())


# -- put ---------------------------------------------------------------------------------


def test_put_get_small_and_large(cluster):
    small = {"a": [1, 2, 3], "b": "text"}
    assert ray.get(ray.put(small)) == small
    assert ray.get(ray.put(None)) is None
    blob = os.urandom(3 * 1024 * 1024)
    assert ray.get(ray.put(blob)) == blob
    arr = np.random.default_rng(0).random(500_000)
    out = ray.get(ray.put(arr))
    np.testing.assert_array_equal(out, arr)
    assert not out.flags.writeable
    # a put value is usable as a task argument
    assert ray.get(echo.remote(ray.put(small))) == small


def test_put_ref_is_rejected(cluster):
    ref = ray.put(1)
    with pytest.raises(TypeError, match="Calling 'put' on an"):
        ray.put(ref)
    inner = ray.get(ray.put([ref]))
    assert inner == [ref]
    assert ray.get(inner[0]) == 1


def test_put_bytearray_comes_back_as_bytes(cluster):
    value = ray.get(ray.put(bytearray(b"x")))
    assert type(value) is bytes
    assert value == b"x"


# -- ObjectRef API -----------------------------------------------------------------------


def test_pickled_ref_can_be_got(cluster):
    ref = echo.remote("pickled")
    copy = pickle.loads(pickle.dumps(ref))
    assert copy == ref
    assert hash(copy) == hash(ref)
    assert ray.get(copy, timeout=30) == "pickled"
    put_copy = pickle.loads(pickle.dumps(ray.put([1, 2])))
    assert ray.get(put_copy) == [1, 2]


def test_object_ref_ids(cluster):
    ref = echo.remote(1)
    assert len(ref.hex()) == 56
    assert all(c in "0123456789abcdef" for c in ref.hex())
    assert len(ref.binary()) == 28
    assert len(ref.task_id().hex()) == 48
    assert ref.hex().startswith(ref.task_id().hex())
    put_ref = ray.put(1)
    assert len(put_ref.hex()) == 56
    assert len(put_ref.task_id().hex()) == 48
    assert put_ref != ref
    assert repr(ref) == f"ObjectRef({ref.hex()})"


def test_object_ref_equality_and_hash(cluster):
    ref = ray.put("same")
    twin = ray.ObjectRef(ref.binary())
    assert twin is not ref
    assert twin == ref
    assert hash(twin) == hash(ref)
    assert len({ref, twin}) == 1
    assert ref != ref.binary()
    assert ref != ray.put("same")
    refs = [echo.remote(i) for i in range(3)]
    assert len(set(refs)) == 3
    ray.get(refs)


def test_get_raises_the_first_error_without_waiting_for_the_rest(cluster, tmp_path):
    @ray.remote(max_retries=0)
    def fails():
        raise ValueError("fails at once")

    @ray.remote
    def hangs(path):
        while not os.path.exists(path):
            time.sleep(0.02)
        return "released"

    release = tmp_path / "release"
    hanging = hangs.remote(str(release))
    # Before, this waited for the hanging task and ended in GetTimeoutError.
    with pytest.raises(ValueError, match="fails at once"):
        ray.get([hanging, fails.remote()], timeout=30)
    release.touch()
    assert ray.get(hanging, timeout=30) == "released"
