"""init(local_mode=True): tasks and actors run in the driver's process, one at a time."""

from __future__ import annotations

import os
import sys
import threading

import pytest

import manta as ray
from manta.exceptions import ActorDiedError, RayTaskError, WorkerCrashedError

ORDER: list[int] = []


@pytest.fixture(scope="module")
def local():
    context = ray.init(num_cpus=1, local_mode=True)
    yield context
    ray.shutdown()


@ray.remote
def where(x):
    ORDER.append(x)
    return x, os.getpid(), threading.current_thread() is threading.main_thread()


def test_tasks_run_in_the_driver_in_submission_order(local):
    ORDER.clear()
    refs = [where.remote(i) for i in range(5)]
    assert ORDER == [0, 1, 2, 3, 4]  # each ran when it was submitted
    for i, (value, pid, on_main_thread) in enumerate(ray.get(refs)):
        assert (value, pid, on_main_thread) == (i, os.getpid(), True)  # where a debugger stops
    ready, not_ready = ray.wait(refs, num_returns=5, timeout=0)
    assert len(ready) == 5 and not not_ready


@ray.remote
def double(x):
    return 2 * x


@ray.remote
def nested(x):
    return ray.get(double.remote(x)) + 1


def test_refs_as_arguments_and_nested_tasks(local):
    assert ray.get(double.remote(double.remote(3))) == 12
    assert ray.get(nested.remote(5)) == 11
    big = ray.put(bytes(300_000))  # through the object store
    assert ray.get(double.remote(big)) == bytes(600_000)


@ray.remote(max_retries=0)
def fails(tag):
    raise ValueError(f"failed {tag}")


def test_errors_are_raised_at_get_with_the_remote_traceback(local):
    ref = fails.remote("here")
    with pytest.raises(ValueError, match="failed here") as info:
        ray.get(ref)
    assert isinstance(info.value, RayTaskError)
    assert 'raise ValueError(f"failed {tag}")' in str(info.value)
    with pytest.raises(ValueError, match="failed here"):
        ray.get(double.remote(ref))  # a failed argument fails the task that takes it


def test_sys_exit_in_a_task_fails_it_and_the_driver_lives_on(local):
    @ray.remote(max_retries=0)
    def leaves():
        sys.exit(3)

    with pytest.raises(WorkerCrashedError, match=r"sys.exit\(3\)"):
        ray.get(leaves.remote())
    assert ray.get(double.remote(1)) == 2


def test_retry_exceptions_runs_the_task_again(local, tmp_path):
    marker = tmp_path / "tried"

    @ray.remote(max_retries=2, retry_exceptions=True)
    def flaky(path):
        if not os.path.exists(path):
            open(path, "w").close()
            raise RuntimeError("first try fails")
        return "second try"

    assert ray.get(flaky.remote(str(marker))) == "second try"


@ray.remote
class Counter:
    def __init__(self, start):
        self.n = start

    def inc(self):
        self.n += 1
        return self.n, os.getpid()

    def leave(self):
        ray.actor.exit_actor()


def test_actors_keep_state_in_the_driver(local):
    counter = Counter.options(name="local-counter").remote(10)
    assert [ray.get(counter.inc.remote())[0] for _ in range(3)] == [11, 12, 13]
    assert ray.get(counter.inc.remote())[1] == os.getpid()
    assert ray.get(ray.get_actor("local-counter").inc.remote())[0] == 15
    with pytest.raises(ValueError, match="already taken"):
        Counter.options(name="local-counter").remote(0)
    same = Counter.options(name="local-counter", get_if_exists=True).remote(0)
    assert ray.get(same.inc.remote())[0] == 16
    ray.kill(counter)
    with pytest.raises(ActorDiedError, match="killed"):
        ray.get(counter.inc.remote())
    with pytest.raises(ValueError):
        ray.get_actor("local-counter")


def test_exit_actor_ends_only_the_actor(local):
    counter = Counter.remote(0)
    with pytest.raises(ActorDiedError):
        ray.get(counter.leave.remote())
    with pytest.raises(ActorDiedError):
        ray.get(counter.inc.remote())
    assert ray.get(double.remote(2)) == 4


def test_a_failing_constructor_fails_the_calls(local):
    @ray.remote
    class Broken:
        def __init__(self):
            raise KeyError("no config")

        def f(self):
            return 1

    broken = Broken.remote()
    with pytest.raises(ActorDiedError, match="no config"):
        ray.get(broken.f.remote())


def test_async_actors(local):
    @ray.remote
    class Async:
        async def twice(self, x):
            return 2 * x

    assert ray.get(Async.remote().twice.remote(21)) == 42


def test_generators(local):
    @ray.remote(max_retries=0)
    def items(n):
        yield from range(n)
        raise ValueError("after the items")

    gen = items.remote(3)
    assert [ray.get(next(gen)) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="after the items"):
        ray.get(next(gen))
    with pytest.raises(StopIteration):
        next(gen)
