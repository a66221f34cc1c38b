"""manta.cancel: queued, running, cooperative, forced and recursive cancellation."""

from __future__ import annotations

import os
import time

import pytest

import manta as ray
from manta.exceptions import RayTaskError, TaskCancelledError
from tests.polling import touch, wait_for_files


@ray.remote
def blocker(started, release, limit=30.0):
    """Holds a CPU until ``release`` exists (or ``limit`` seconds pass)."""
    touch(started)
    deadline = time.monotonic() + limit
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.02)
    return "released"


@ray.remote
def sleeper(started, interrupted, done, duration):
    """Sleeps in short steps; records whether it was interrupted or ran to the end."""
    touch(started)
    try:
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            time.sleep(0.02)
    except KeyboardInterrupt:
        touch(interrupted)
        raise
    touch(done)
    return "done"


def test_cancel_queued_task(cluster, tmp_path):
    release = str(tmp_path / "release")
    started = [str(tmp_path / f"blocker{i}") for i in range(2)]
    blockers = [blocker.remote(s, release) for s in started]
    wait_for_files(*started)

    ran = str(tmp_path / "queued_ran")
    queued = sleeper.remote(ran, str(tmp_path / "q_int"), str(tmp_path / "q_done"), 0)
    ray.cancel(queued)
    with pytest.raises(TaskCancelledError) as info:
        ray.get(queued, timeout=20)
    assert not isinstance(info.value, RayTaskError)

    touch(release)
    assert ray.get(blockers, timeout=30) == ["released", "released"]
    # Run more tasks through the freed CPUs: a cancelled task still queued would run now.
    after = [str(tmp_path / f"after{i}") for i in range(4)]
    ray.get([blocker.remote(a, release) for a in after], timeout=30)
    assert not os.path.exists(ran)


def test_cancel_running_task(cluster, tmp_path):
    started, interrupted, done = (str(tmp_path / n) for n in ("started", "interrupted", "done"))
    ref = sleeper.remote(started, interrupted, done, 30)
    wait_for_files(started)
    assert ray.cancel(ref) is None
    with pytest.raises(TaskCancelledError) as info:
        ray.get(ref, timeout=15)
    assert isinstance(info.value, RayTaskError)
    assert type(info.value).__name__ == "RayTaskError(TaskCancelledError)"
    wait_for_files(interrupted, timeout=5)
    assert not os.path.exists(done)


def test_a_cancel_waits_for_an_import_in_progress_to_finish(cluster, tmp_path):
    """An interrupt inside an import would leave the module half made in that worker for
    every later task (a library missing attributes): it lands after the import instead."""
    (tmp_path / "slow_import_for_cancel.py").write_text(
        f"import time\nopen({str(tmp_path / 'importing')!r}, 'w').close()\ntime.sleep(1.0)\n"
        f"open({str(tmp_path / 'imported')!r}, 'w').close()\n"
    )

    @ray.remote
    def importer(directory: str) -> None:
        import sys

        sys.path.insert(0, directory)
        try:
            import slow_import_for_cancel  # noqa: F401

            time.sleep(30)
        except KeyboardInterrupt:
            touch(os.path.join(directory, "interrupted"))
            raise

    ref = importer.remote(str(tmp_path))
    wait_for_files(tmp_path / "importing")
    ray.cancel(ref)
    with pytest.raises(TaskCancelledError):
        ray.get(ref, timeout=15)
    assert (tmp_path / "imported").exists()  # the import ran to its end
    assert (tmp_path / "interrupted").exists()  # and the cancel landed after it


def test_task_swallowing_keyboard_interrupt_returns_value(cluster, tmp_path):
    started = str(tmp_path / "started")

    @ray.remote
    def swallow(path):
        touch(path)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                time.sleep(0.02)
        except KeyboardInterrupt:
            return "swallowed"
        return "finished"

    ref = swallow.remote(started)
    wait_for_files(started)
    ray.cancel(ref)
    assert ray.get(ref, timeout=15) == "swallowed"


def test_force_cancel_kills_worker(cluster, tmp_path):
    started = str(tmp_path / "started")

    @ray.remote
    def stubborn(path):
        touch(path)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                time.sleep(0.02)
            except KeyboardInterrupt:
                pass  # ignores polite cancellation; only force can stop it
        return os.getpid()

    ref = stubborn.remote(started)
    wait_for_files(started)
    ray.cancel(ref, force=True)
    with pytest.raises(TaskCancelledError):
        ray.get(ref, timeout=15)

    @ray.remote
    def ok(x):
        return x + 1

    assert ray.get([ok.remote(i) for i in range(4)], timeout=30) == [1, 2, 3, 4]


def test_cancel_finished_task_is_noop(cluster):
    @ray.remote
    def seven():
        return 7

    ref = seven.remote()
    assert ray.get(ref, timeout=30) == 7
    assert ray.cancel(ref) is None
    assert ray.cancel(ref, force=True) is None
    assert ray.get(ref) == 7
    put_ref = ray.put("v")
    ray.cancel(put_ref)
    assert ray.get(put_ref) == "v"


@ray.remote(num_cpus=0)
def parent(dirpath, duration):
    refs = [
        sleeper.remote(
            os.path.join(dirpath, f"child{i}_started"),
            os.path.join(dirpath, f"child{i}_interrupted"),
            os.path.join(dirpath, f"child{i}_done"),
            duration,
        )
        for i in range(2)
    ]
    return ray.get(refs)


def _child_paths(tmp_path, kind):
    return [str(tmp_path / f"child{i}_{kind}") for i in range(2)]


def test_recursive_cancel_cancels_children(cluster, tmp_path):
    ref = parent.remote(str(tmp_path), 10)
    wait_for_files(*_child_paths(tmp_path, "started"))
    ray.cancel(ref)  # recursive=True is the default
    with pytest.raises(TaskCancelledError):
        ray.get(ref, timeout=15)
    wait_for_files(*_child_paths(tmp_path, "interrupted"), timeout=8)
    assert not any(os.path.exists(p) for p in _child_paths(tmp_path, "done"))


def test_non_recursive_cancel_leaves_children_running(cluster, tmp_path):
    ref = parent.remote(str(tmp_path), 1.5)
    wait_for_files(*_child_paths(tmp_path, "started"))
    ray.cancel(ref, recursive=False)
    with pytest.raises(TaskCancelledError):
        ray.get(ref, timeout=15)
    wait_for_files(*_child_paths(tmp_path, "done"), timeout=20)
    assert not any(os.path.exists(p) for p in _child_paths(tmp_path, "interrupted"))


def test_cancel_rejects_non_refs(cluster):
    with pytest.raises(TypeError, match="only supported for object refs"):
        ray.cancel(1)
    ref = ray.put(1)
    with pytest.raises(TypeError, match="only supported for object refs"):
        ray.cancel([ref])


def _slow_rebuild(path, value):
    touch(path)  # the worker has started loading the arguments
    time.sleep(2)
    return value


class SlowArgument:
    """Takes two seconds to unpickle in the worker."""

    def __init__(self, path, value):
        self.path, self.value = path, value

    def __reduce__(self):
        return (_slow_rebuild, (self.path, self.value))


def test_cancel_while_the_worker_loads_the_arguments(cluster, tmp_path):
    @ray.remote
    def take(arg):
        return "ran to completion"

    loading = str(tmp_path / "loading")
    ref = take.remote(SlowArgument(loading, 1))
    wait_for_files(loading)
    ray.cancel(ref)
    with pytest.raises(TaskCancelledError):
        ray.get(ref, timeout=30)


def test_force_cancel_of_a_task_that_is_not_running_kills_nobody(cluster, tmp_path):
    @ray.remote(max_retries=0)
    def quick(x=None):
        return x

    ray.get([quick.remote() for _ in range(200)])  # short: the owner pipelines it
    release = str(tmp_path / "release")
    started = [str(tmp_path / f"b{i}") for i in range(2)]
    busy = [blocker.remote(s, release) for s in started]
    wait_for_files(*started)
    waiting = quick.remote("never")  # no free worker: it waits, or sits behind a blocker
    time.sleep(0.1)
    ray.cancel(waiting, force=True)
    with pytest.raises(TaskCancelledError):
        ray.get(waiting, timeout=30)
    touch(release)
    assert ray.get(busy, timeout=30) == ["released", "released"]  # nobody else was killed


@ray.remote
def passthrough(x):
    return x


def test_cancel_in_a_dependency_chain_fails_the_dependents(cluster, tmp_path):
    started = tmp_path / "started"
    head = sleeper.options(max_retries=0).remote(
        str(started), str(tmp_path / "int"), str(tmp_path / "done"), 60
    )
    middle = passthrough.remote(head)
    last = passthrough.remote(middle)
    wait_for_files(started)
    ray.cancel(head)
    for ref in (head, middle, last):
        with pytest.raises(TaskCancelledError):
            ray.get(ref, timeout=30)


def test_cancel_a_task_waiting_for_its_arguments(cluster, tmp_path):
    started, release = tmp_path / "started", tmp_path / "release"
    head = blocker.remote(str(started), str(release))
    waiting = passthrough.remote(head)
    wait_for_files(started)
    ray.cancel(waiting)
    with pytest.raises(TaskCancelledError):
        ray.get(waiting, timeout=30)
    touch(release)
    assert ray.get(head, timeout=30) == "released"  # the argument's own task is untouched
    assert ray.get(passthrough.remote(head), timeout=30) == "released"


@ray.remote
class OwnsATask:
    def submit(self, started, release):
        self.ref = blocker.remote(started, release)
        return [self.ref]


def test_cancel_of_a_ref_owned_by_another_worker_reaches_its_owner(cluster, tmp_path):
    started = tmp_path / "started"
    owner = OwnsATask.remote()
    [ref] = ray.get(owner.submit.remote(str(started), str(tmp_path / "never")), timeout=30)
    wait_for_files(started)
    ray.cancel(ref)  # the driver only borrows it: its owner, the actor, cancels it
    with pytest.raises(TaskCancelledError):
        ray.get(ref, timeout=30)


def test_a_cancelled_task_knows_it_was_cancelled(cluster, tmp_path):
    started = tmp_path / "started"

    @ray.remote(max_retries=0)
    def notices(started_path):
        assert not ray.get_runtime_context().is_canceled()
        try:
            touch(started_path)  # inside: the cancel may come as soon as the file is there
            time.sleep(60)
        except KeyboardInterrupt:
            return ray.get_runtime_context().is_canceled()
        return "not cancelled"

    ref = notices.remote(str(started))
    wait_for_files(started)
    ray.cancel(ref)
    assert ray.get(ref, timeout=30) is True  # it swallowed the interrupt and returned
    assert not ray.get_runtime_context().is_canceled()  # the driver is no task


@ray.remote
def submits_until_cancelled(started):
    """Spends its time in the task path's own code: nested submissions, as fast as it can."""
    touch(started)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        passthrough.remote(1)
    return "never cancelled"


@ray.remote
def submits_and_waits():
    return sum(ray.get([passthrough.remote(i) for i in range(20)]))


def test_a_task_cancelled_while_it_submits_leaves_its_worker_sound(cluster, tmp_path):
    # The interrupt lands in the task's own code, never in the task path's: raised in an
    # ObjectRef's __del__ it was swallowed (the cancel lost, the task ran on), and inside
    # the submitter (a lock taken and not yet guarded) it would wedge the worker.
    for i in range(8):
        started = str(tmp_path / f"started{i}")
        ref = submits_until_cancelled.remote(started)
        wait_for_files(started)
        time.sleep(0.05)
        ray.cancel(ref)
        with pytest.raises(TaskCancelledError):
            ray.get(ref, timeout=30)
        assert ray.get([submits_and_waits.remote() for _ in range(4)], timeout=30) == [190] * 4
