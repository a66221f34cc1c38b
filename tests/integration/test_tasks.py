"""Remote functions end to end: submission, arguments, returns, nesting and large values."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

import manta as ray
from manta.exceptions import RayTaskError
from tests.integration.conftest import run_driver


def test_basic_task(cluster):
    @ray.remote
    def add(a, b):
        return a + b

    ref = add.remote(1, 2)
    assert isinstance(ref, ray.ObjectRef)
    assert ray.get(ref) == 3
    assert ray.get(add.remote("a", b="b")) == "ab"
    assert ray.get(add.remote([1], [2])) == [1, 2]


def test_task_returning_none_and_builtin_types(cluster):
    @ray.remote
    def echo(x):
        return x

    values = [None, 0, -1.5, "s", b"b", (1, 2), {"k": [1, {2}]}, True]
    assert ray.get([echo.remote(v) for v in values]) == values


def test_thousand_small_tasks(cluster):
    @ray.remote
    def double(x):
        return 2 * x

    refs = [double.remote(i) for i in range(1000)]
    assert len(set(refs)) == 1000
    assert ray.get(refs) == [2 * i for i in range(1000)]


def test_nested_task_submission(cluster):
    @ray.remote
    def inner(x):
        return x + 1

    @ray.remote
    def outer(n):
        return ray.get([inner.remote(i) for i in range(n)])

    assert ray.get(outer.remote(5)) == [1, 2, 3, 4, 5]


def test_deep_nesting(cluster):
    @ray.remote
    def level3(x):
        return ("l3", x)

    @ray.remote
    def level2(x):
        return ("l2", ray.get(level3.remote(x)))

    @ray.remote
    def level1(x):
        return ("l1", ray.get(level2.remote(x)))

    assert ray.get(level1.remote(7)) == ("l1", ("l2", ("l3", 7)))


@ray.remote
def _countdown(n, step=1):
    return n if n <= 0 else ray.get(_countdown.remote(n - step))


def test_a_recursive_task_keeps_its_default_arguments(cluster):
    # The worker unpickles the function together with the remote function that refers to
    # it; its defaults must count when it calls itself.
    assert ray.get(_countdown.remote(3), timeout=30) == 0
    with pytest.raises(TypeError, match=r"_countdown\.remote\(\): missing a required argument: 'n'"):
        _countdown.remote()


def test_top_level_ref_args_are_resolved(cluster):
    @ray.remote
    def describe(x, *, y=None):
        return type(x).__name__, x, type(y).__name__, y

    put_ref = ray.put(5)
    task_ref = describe.remote(1)  # a task's result, not yet necessarily ready
    assert ray.get(describe.remote(put_ref, y=ray.put("s"))) == ("int", 5, "str", "s")
    assert ray.get(describe.remote(task_ref, y=put_ref)) == ("tuple", ("int", 1, "NoneType", None), "int", 5)


def test_nested_refs_are_passed_as_refs(cluster):
    @ray.remote
    def produce(x):
        return x * 2

    @ray.remote
    def consume(lst, d):
        is_refs = (isinstance(lst[0], ray.ObjectRef), isinstance(d["k"], ray.ObjectRef))
        return is_refs, ray.get(lst[0]) + ray.get(d["k"]), ray.get(lst[1])

    a = ray.put(1)
    b = produce.remote(21)
    assert ray.get(consume.remote([a, b], {"k": b})) == ((True, True), 43, 42)


def test_num_returns_two(cluster):
    @ray.remote(num_returns=2)
    def two():
        return 1, 2

    refs = two.remote()
    assert isinstance(refs, list)
    assert len(refs) == 2
    assert all(isinstance(r, ray.ObjectRef) for r in refs)
    assert refs[0] != refs[1]
    assert ray.get(refs) == [1, 2]

    @ray.remote
    def pair():
        return [3, 4]

    refs = pair.options(num_returns=2).remote()
    assert ray.get(refs[1]) == 4
    assert ray.get(refs[0]) == 3


def test_num_returns_zero_returns_none(cluster):
    @ray.remote(num_returns=0)
    def nothing():
        return 5

    assert nothing.remote() is None


def test_num_returns_mismatch_fails(cluster):
    @ray.remote(num_returns=2)
    def three():
        return 1, 2, 3

    refs = three.remote()
    assert len(refs) == 2
    for ref in refs:
        with pytest.raises(ValueError) as info:
            ray.get(ref, timeout=30)
        assert isinstance(info.value, RayTaskError)
        message = str(info.value)
        assert "returned 3" in message
        assert "num_returns=2" in message


def test_options_name(cluster):
    @ray.remote
    def named(x):
        return x + 1

    custom = named.options(name="custom")
    assert ray.get(custom.remote(1)) == 2
    assert ray.get(named.remote(1)) == 2  # options() does not change the original


def test_options_name_is_the_task_name(cluster):
    @ray.remote
    def task_name():
        return ray.get_runtime_context().get_task_name()

    assert ray.get(task_name.options(name="custom").remote()) == "custom"
    assert ray.get(task_name.remote()) == "task_name"


def test_large_arguments_round_trip(cluster):
    @ray.remote
    def echo(x):
        return x

    @ray.remote
    def checksum(blob, arr):
        return len(blob), blob[:3], blob[-3:], arr.dtype.str, arr.shape, float(arr.sum())

    blob = os.urandom(1024 * 1024)
    arr = np.arange(2 * 1024 * 1024 // 8, dtype=np.float64)
    assert ray.get(checksum.remote(blob, arr)) == (
        len(blob),
        blob[:3],
        blob[-3:],
        arr.dtype.str,
        arr.shape,
        float(arr.sum()),
    )
    assert ray.get(echo.remote(blob)) == blob
    np.testing.assert_array_equal(ray.get(echo.remote(arr)), arr)


def test_large_return_values(cluster):
    @ray.remote
    def make_bytes(n):
        return b"\x07" * n

    @ray.remote
    def make_array(n):
        return np.full(n, 3, dtype=np.int32)

    data = ray.get(make_bytes.remote(5 * 1024 * 1024))
    assert len(data) == 5 * 1024 * 1024
    assert data.count(b"\x07") == len(data)
    arr = ray.get(make_array.remote(1_000_000))
    assert arr.shape == (1_000_000,)
    assert arr.dtype == np.int32
    assert int(arr.sum()) == 3_000_000


def test_result_ref_passed_to_another_task(cluster):
    @ray.remote
    def inc(x):
        return x + 1

    ref = inc.remote(0)
    for _ in range(10):
        ref = inc.remote(ref)
    assert ray.get(ref) == 11

    @ray.remote
    def big():
        return np.ones(300_000)

    @ray.remote
    def total(a):
        return float(a.sum())

    assert ray.get(total.remote(big.remote())) == 300_000.0


@pytest.mark.parametrize("size", [10, 1_000_000], ids=["small", "large"])
def test_returned_numpy_array_is_read_only(cluster, size):
    @ray.remote
    def make(n):
        return np.arange(n)

    arr = ray.get(make.remote(size))
    np.testing.assert_array_equal(arr, np.arange(size))
    assert not arr.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        arr[0] = 5


def test_failed_dependency_fails_dependent_without_running_it(cluster, tmp_path):
    flag = tmp_path / "dependent_ran"

    @ray.remote
    def boom():
        raise KeyError("dependency failed")

    @ray.remote
    def dependent(x, path):
        with open(path, "w") as f:
            f.write("ran")
        return x

    ref = dependent.remote(boom.remote(), str(flag))
    with pytest.raises(KeyError) as info:
        ray.get(ref, timeout=30)
    assert isinstance(info.value, RayTaskError)
    assert "dependency failed" in str(info.value)
    # Flush the queue so a wrongly-run dependent would have written by now.
    ray.get([dependent.remote(i, str(tmp_path / f"other{i}")) for i in range(2)])
    assert not flag.exists()


def test_closures_and_lambdas(cluster):
    factor = 3
    offsets = {"a": 100}

    def helper(x):
        return x * factor

    @ray.remote
    def uses_closure(x):
        return helper(x) + offsets["a"]

    assert ray.get(uses_closure.remote(2)) == 106

    square = ray.remote(lambda x: x * x)
    assert ray.get([square.remote(i) for i in range(5)]) == [0, 1, 4, 9, 16]

    def make_adder(n):
        @ray.remote
        def add(x):
            return x + n

        return add

    assert ray.get([make_adder(1).remote(1), make_adder(10).remote(1)]) == [2, 11]


def test_function_from_helper_module_on_sys_path(tmp_path):
    # A separate driver puts tmp_path on sys.path before init; workers import the module by name.
    (tmp_path / "manta_helper_mod_xyz.py").write_text("def triple(x):\n    return 3 * x\n")
    proc = run_driver(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import manta
        import manta_helper_mod_xyz
        manta.init(num_cpus=1, num_gpus=0)
        try:
            f = manta.remote(manta_helper_mod_xyz.triple)
            print("RESULT", manta.get(f.remote(14), timeout=30))

            @manta.remote
            def via_import(x):
                import manta_helper_mod_xyz as m
                return m.triple(x)

            print("RESULT2", manta.get(via_import.remote(2), timeout=30))
        finally:
            manta.shutdown()
        """,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RESULT 42" in proc.stdout
    assert "RESULT2 6" in proc.stdout


# -- pipelining never costs correctness ---------------------------------------------------


@ray.remote
def rendezvous(flags_dir=None, me=None, other=None, limit_s=30.0):
    if me is None:
        return True  # the fast path: teaches the owner this function is short
    open(os.path.join(flags_dir, me), "w").close()
    deadline = time.monotonic() + limit_s
    while not os.path.exists(os.path.join(flags_dir, other)):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_tasks_that_wait_for_each_other_do_not_deadlock_behind_pipelining(cluster, tmp_path):
    # Many short calls make the owner queue several tasks per worker; two that wait for
    # each other must still both run (the worker sends queued ones back).
    ray.get([rendezvous.remote() for _ in range(200)])
    both = [rendezvous.remote(str(tmp_path), "a", "b"), rendezvous.remote(str(tmp_path), "b", "a")]
    assert ray.get(both, timeout=60) == [True, True]


def test_an_answer_is_not_held_back_behind_a_task_that_runs_long(cluster, tmp_path):
    # A worker holds the answer of a brief task while another task it knows as brief
    # follows, to write the answers together; when that one runs long after all, the
    # held answers still go out (the requeue timer sends them), not after it.
    ray.get([rendezvous.remote() for _ in range(200)])
    brief = [rendezvous.remote() for _ in range(8)]
    long = [rendezvous.remote(str(tmp_path), f"long{i}", "go") for i in range(2)]
    try:
        assert ray.get(brief, timeout=20) == [True] * 8
    finally:
        (tmp_path / "go").touch()
    assert ray.get(long, timeout=60) == [True, True]


def test_get_with_duplicate_refs_waits_for_all(cluster, tmp_path):
    release = tmp_path / "release"

    @ray.remote
    def later():
        deadline = time.monotonic() + 30
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return "b"

    a = ray.put("a")
    pending = later.remote()
    threading.Timer(0.2, release.touch).start()
    assert ray.get([a, a, pending], timeout=60) == ["a", "a", "b"]


def test_a_retried_task_puts_fresh_objects(cluster, tmp_path):
    attempts = tmp_path / "attempts"

    @ray.remote(max_retries=2, retry_exceptions=True)
    def put_then_maybe_fail(size):
        with open(attempts, "a") as f:
            f.write("x")
        attempt = len(attempts.read_text())
        ref = ray.put(f"value of attempt {attempt}".ljust(size))
        if attempt == 1:
            raise ValueError("first attempt fails after its put")
        return [ref]

    for size in (10, 300_000):  # inline and in the store
        attempts.write_text("")
        (ref,) = ray.get(put_then_maybe_fail.remote(size), timeout=60)
        assert ray.get(ref, timeout=60).strip() == "value of attempt 2"


def test_threads_submitting_at_once_each_get_their_own_results_and_actor_order(cluster):
    # Each thread's submit-then-get loop is sent from that thread when a worker or actor
    # idles, else through the I/O thread: results must not cross, and each actor must see
    # its caller's calls in order, whichever way each call went.
    @ray.remote
    def tag(thread, i):
        return (thread, i)

    @ray.remote
    class Log:
        def __init__(self):
            self.seen = []

        def add(self, i):
            self.seen.append(i)
            return len(self.seen)

        def all(self):
            return self.seen

    logs = [Log.remote() for _ in range(3)]
    ray.get([log.all.remote() for log in logs])
    errors: list[BaseException] = []

    def run(thread: int) -> None:
        try:
            for i in range(150):
                assert ray.get(tag.remote(thread, i)) == (thread, i)
                assert ray.get(logs[thread].add.remote(i)) == i + 1
            refs = [logs[thread].add.remote(150 + i) for i in range(50)]  # piled up, then sent in order
            assert ray.get(refs) == list(range(151, 201))
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert ray.get([log.all.remote() for log in logs]) == [list(range(200))] * 3


def test_a_task_sent_to_an_idle_worker_from_the_caller_can_be_cancelled(cluster):
    @ray.remote
    def quick():
        return 1

    @ray.remote
    def slow():
        time.sleep(60)

    assert ray.get(quick.remote()) == 1  # a worker of this shape now idles on its lease
    for _ in range(3):
        ref = slow.remote()
        time.sleep(0.2)
        ray.cancel(ref)
        with pytest.raises(ray.exceptions.TaskCancelledError):
            ray.get(ref, timeout=30)
