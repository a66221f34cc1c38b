"""Resources and scheduling: CPU, fractional CPU, GPUs, custom resources, max_calls, infeasible tasks.

The module runs its own cluster with 2 CPUs, 2 (logical) GPUs and one unit of "custom".
Tasks coordinate through flag files in a temporary directory, never through timings.
"""

from __future__ import annotations

import ast
import collections
import os
import time

import pytest

import manta as ray
from tests.integration.conftest import run_driver
from tests.polling import poll, touch


@pytest.fixture(scope="module")
def resource_cluster():
    context = ray.init(num_cpus=2, num_gpus=2, resources={"custom": 1})
    yield context
    ray.shutdown()


def _await_file(path: str, timeout: float = 30.0) -> bool:
    """Inside a task: wait for ``path`` to exist (a flag set by the driver or a sibling task)."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _await_all(directory: str, n: int, timeout: float = 30.0) -> bool:
    return all(_await_file(os.path.join(directory, f"start{i}"), timeout) for i in range(n))


@ray.remote
def _hold(start_flag: str, release_flag: str) -> bool:
    touch(start_flag)
    return _await_file(release_flag)


def _idle_cpu(timeout: float = 20.0) -> None:
    assert poll(lambda: ray.available_resources().get("CPU") == 2.0, timeout), ray.available_resources()


def test_cluster_resources(resource_cluster):
    total = ray.cluster_resources()
    assert total["CPU"] == 2.0
    assert total["GPU"] == 2.0
    assert total["custom"] == 1.0
    assert total["node:127.0.0.1"] == 1.0
    assert total["memory"] > 0
    assert total["object_store_memory"] > 0
    assert all(isinstance(v, float) for v in total.values()), total


def test_available_resources_track_a_running_task(resource_cluster, tmp_path):
    _idle_cpu()
    idle = ray.available_resources()
    assert idle["GPU"] == 2.0
    assert idle["custom"] == 1.0
    release = str(tmp_path / "release")
    ref = _hold.remote(str(tmp_path / "start"), release)
    try:
        assert poll(lambda: ray.available_resources().get("CPU") == 1.0), ray.available_resources()
        assert ray.cluster_resources()["CPU"] == 2.0  # totals do not change
    finally:
        touch(release)
    assert ray.get(ref, timeout=30) is True
    _idle_cpu()


def test_exhausted_resource_disappears_from_available(resource_cluster, tmp_path):
    _idle_cpu()
    release = str(tmp_path / "release")
    refs = [_hold.remote(str(tmp_path / f"start{i}"), release) for i in range(2)]
    try:
        assert poll(lambda: "CPU" not in ray.available_resources()), ray.available_resources()
        assert "GPU" in ray.available_resources()
    finally:
        touch(release)
    assert ray.get(refs, timeout=30) == [True, True]
    _idle_cpu()


def test_available_object_store_memory_follows_what_is_stored(resource_cluster):
    total = ray.cluster_resources()["object_store_memory"]
    before = ray.available_resources()["object_store_memory"]
    assert before <= total
    held = ray.put(b"x" * (8 << 20))
    assert poll(lambda: ray.available_resources()["object_store_memory"] <= before - (8 << 20), timeout=10)
    del held
    assert poll(lambda: ray.available_resources()["object_store_memory"] >= before, timeout=10)


def test_fractional_cpu_tasks_run_concurrently(resource_cluster, tmp_path):
    @ray.remote(num_cpus=0.5)
    def rendezvous(i, directory, n):
        touch(os.path.join(directory, f"start{i}"))
        return _await_all(directory, n)

    refs = [rendezvous.remote(i, str(tmp_path), 4) for i in range(4)]
    # Each task returns only once all four have started: only possible if all four ran at once.
    assert ray.get(refs, timeout=60) == [True] * 4


def test_custom_resource_tasks_run_one_at_a_time(resource_cluster, tmp_path):
    _idle_cpu()

    @ray.remote(resources={"custom": 1})
    def exclusive(i, directory):
        others_done = [
            os.path.exists(os.path.join(directory, f"done{j}"))
            for j in range(2)
            if j != i and os.path.exists(os.path.join(directory, f"start{j}"))
        ]
        touch(os.path.join(directory, f"start{i}"))
        ok = _await_file(os.path.join(directory, f"release{i}"))
        touch(os.path.join(directory, f"done{i}"))
        return ok, others_done

    d = str(tmp_path)
    refs = [exclusive.remote(i, d) for i in range(2)]

    def started() -> list[int]:
        return [i for i in range(2) if os.path.exists(os.path.join(d, f"start{i}"))]

    assert poll(lambda: len(started()) >= 1)
    (first,) = started()
    second = 1 - first
    # The other task has a free CPU but no "custom": it must not start while the first runs.
    assert poll(lambda: ray.available_resources().get("CPU") == 1.0)
    assert "custom" not in ray.available_resources()
    assert not poll(lambda: len(started()) > 1, timeout=1.0), "both custom tasks started"
    touch(os.path.join(d, f"release{first}"))
    assert ray.get(refs[first], timeout=30) == (True, [])
    assert poll(lambda: len(started()) == 2)
    touch(os.path.join(d, f"release{second}"))
    # When the second task started, the first had already finished.
    assert ray.get(refs[second], timeout=30) == (True, [True])


@ray.remote(num_gpus=1)
def _gpu_info(start_flag=None, wait_for=None):
    if start_flag:
        touch(start_flag)
    if wait_for:
        _await_file(wait_for)
    return ray.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES"), os.getpid()


def test_one_gpu_task_gets_one_gpu(resource_cluster):
    ids, visible, _ = ray.get(_gpu_info.remote(), timeout=30)
    assert ids in ([0], [1])
    assert all(isinstance(i, int) for i in ids)
    assert visible == str(ids[0])


def test_concurrent_gpu_tasks_get_different_gpus(resource_cluster, tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    # Each waits for the other to start, so both hold their GPU at the same time.
    refs = [_gpu_info.remote(a, b), _gpu_info.remote(b, a)]
    (ids_a, visible_a, _), (ids_b, visible_b, _) = ray.get(refs, timeout=60)
    assert sorted(ids_a + ids_b) == [0, 1]
    assert visible_a == str(ids_a[0])
    assert visible_b == str(ids_b[0])


def test_half_gpu_tasks_share_a_device(resource_cluster, tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    half = _gpu_info.options(num_gpus=0.5)
    (ids_a, visible_a, _), (ids_b, visible_b, _) = ray.get([half.remote(a, b), half.remote(b, a)], timeout=60)
    assert len(ids_a) == 1
    assert ids_a == ids_b
    assert visible_a == visible_b == str(ids_a[0])


def test_two_gpu_task_gets_both(resource_cluster):
    ids, visible, _ = ray.get(_gpu_info.options(num_gpus=2).remote(), timeout=30)
    assert sorted(ids) == [0, 1]
    assert sorted(visible.split(",")) == ["0", "1"]


def test_cpu_task_has_no_gpu(resource_cluster):
    @ray.remote
    def info():
        return ray.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES")

    ids, visible = ray.get(info.remote(), timeout=30)
    assert ids == []
    assert visible in (None, "")


def test_assigned_resources_report_the_request(resource_cluster):
    @ray.remote
    def assigned():
        return ray.get_runtime_context().get_assigned_resources()

    assert ray.get(assigned.remote(), timeout=30) == {"CPU": 1.0}
    assert ray.get(assigned.options(num_gpus=1).remote(), timeout=30) == {"CPU": 1.0, "GPU": 1.0}
    assert ray.get(assigned.options(num_cpus=0.5, num_gpus=0.5).remote(), timeout=30) == {
        "CPU": 0.5,
        "GPU": 0.5,
    }
    assert ray.get(assigned.options(resources={"custom": 1}).remote(), timeout=30) == {
        "CPU": 1.0,
        "custom": 1.0,
    }


def test_gpu_tasks_run_in_a_fresh_worker_each_time(resource_cluster):
    pids = [ray.get(_gpu_info.remote(), timeout=30)[2] for _ in range(3)]
    assert len(set(pids)) == 3, pids


def test_max_calls_limits_calls_per_worker(resource_cluster):
    @ray.remote(max_calls=2)
    def pid():
        return os.getpid()

    sequential = [ray.get(pid.remote(), timeout=30) for _ in range(6)]
    concurrent = ray.get([pid.remote() for _ in range(8)], timeout=60)
    counts = collections.Counter(sequential + concurrent)
    assert max(counts.values()) <= 2, counts
    assert len(counts) >= 7, counts


def test_gpu_quantity_above_one_must_be_whole(resource_cluster):
    @ray.remote
    def f():
        return 1

    with pytest.raises(ValueError, match="whole numbers"):
        f.options(num_gpus=1.5).remote()
    with pytest.raises(ValueError, match="whole numbers"):
        ray.remote(num_gpus=1.5)(lambda: 1).remote()
    assert ray.get(f.remote(), timeout=30) == 1


def test_nested_blocking_fan_out_completes(resource_cluster):
    # 4 outer tasks of 1 CPU on 2 CPUs, each blocked in get on 2 inner 1-CPU tasks:
    # completes only if blocked tasks lend their CPU back.
    @ray.remote(num_cpus=1)
    def inner(x):
        return x * 10

    @ray.remote(num_cpus=1)
    def outer(i):
        return sum(ray.get([inner.remote(i), inner.remote(i + 1)]))

    refs = [outer.remote(i) for i in range(4)]
    assert ray.get(refs, timeout=60) == [10 * (2 * i + 1) for i in range(4)]
    _idle_cpu()


def test_infeasible_task_stays_pending_and_warns_once(tmp_path):
    result = run_driver(
        """
        import sys, time
        import manta

        class Tee:
            # Passes stderr through and keeps a copy, so the driver can tell when the warning came.
            def __init__(self, inner):
                self.inner, self.seen = inner, []
            def write(self, text):
                self.seen.append(text)
                return self.inner.write(text)
            def flush(self):
                self.inner.flush()
            def __getattr__(self, name):
                return getattr(self.inner, name)

        sys.stderr = tee = Tee(sys.stderr)
        manta.init(num_cpus=2, num_gpus=0)
        try:
            @manta.remote(num_cpus=100)
            def huge():
                return 1

            first = huge.remote()
            ready, not_ready = manta.wait([first], timeout=1)
            print("FIRST", len(ready), len(not_ready), flush=True)
            deadline = time.monotonic() + 20
            while "no node in the cluster can provide" not in "".join(tee.seen):
                if time.monotonic() > deadline:
                    print("NO WARNING", flush=True)
                    break
                time.sleep(0.05)
            more = [huge.remote(), huge.remote()]
            ready, not_ready = manta.wait([first, *more], num_returns=3, timeout=2)
            print("ALL", len(ready), len(not_ready), flush=True)

            @manta.remote
            def small():
                return 2

            print("FEASIBLE", manta.get(small.remote(), timeout=30), flush=True)
        finally:
            manta.shutdown()
        """,
        timeout=90,
        env={"MANTA_TMPDIR": str(tmp_path / "sessions")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "FIRST 0 1" in result.stdout
    assert "NO WARNING" not in result.stdout, result.stderr[-3000:]
    assert "ALL 0 3" in result.stdout
    assert "FEASIBLE 2" in result.stdout  # infeasible tasks do not block feasible ones
    assert result.stderr.count("no node in the cluster can provide") == 1, result.stderr[-3000:]
    assert result.stderr.count("needs {'CPU': 100.0}") == 1, result.stderr[-3000:]


def test_cpu_task_after_a_gpu_task_on_the_same_worker_sees_no_gpus():
    # One CPU, so one worker runs both tasks in turn.
    result = run_driver(
        """
        import os, manta
        manta.init(num_cpus=1, num_gpus=1)
        @manta.remote(num_gpus=1, max_calls=0)
        def on_gpu():
            return os.getpid(), os.environ.get("CUDA_VISIBLE_DEVICES")
        @manta.remote
        def on_cpu():
            return os.getpid(), os.environ.get("CUDA_VISIBLE_DEVICES"), manta.get_gpu_ids()
        print(manta.get(on_gpu.remote()))
        print(manta.get(on_cpu.remote()))
        manta.shutdown()
        """
    )
    assert result.returncode == 0, result.stderr
    gpu_line, cpu_line = result.stdout.strip().splitlines()[-2:]
    gpu_pid, gpu_visible = ast.literal_eval(gpu_line)
    cpu_pid, cpu_visible, cpu_ids = ast.literal_eval(cpu_line)
    assert gpu_visible == "0"
    assert cpu_pid == gpu_pid, "the test needs both tasks on one worker"
    assert cpu_ids == [] and cpu_visible in (None, "")


def test_a_gpu_worker_that_owns_objects_does_not_exit_after_its_call(resource_cluster):
    @ray.remote(num_gpus=1)
    def on_gpu():
        return [ray.put("computed on the GPU")]  # owned by this worker

    [ref] = ray.get(on_gpu.remote(), timeout=60)
    assert ray.get(ref, timeout=30) == "computed on the GPU"


def test_idle_workers_that_own_objects_are_not_reaped():
    result = run_driver(
        """
        import glob, time, manta
        ctx = manta.init(num_cpus=1)
        @manta.remote
        def inner():
            return [manta.put("owned by the inner worker")]
        @manta.remote
        def outer():
            refs = manta.get(inner.remote())  # blocks: a second worker starts for inner
            time.sleep(1)  # so inner's worker is the one idle long enough to be asked to exit
            return refs
        [ref] = manta.get(outer.remote())
        logs = ctx.address_info["session_dir"] + "/logs/worker-*.log"
        deadline = time.monotonic() + 30
        while not any("not exiting" in open(p).read() for p in glob.glob(logs)):
            assert time.monotonic() < deadline, "no worker was asked to exit"
            time.sleep(0.1)
        print(manta.get(ref, timeout=10))
        manta.shutdown()
        """,
        env={"MANTA_IDLE_WORKER_TIMEOUT_S": "0.2"},
    )
    assert result.returncode == 0, result.stderr
    assert "owned by the inner worker" in result.stdout
