"""Actors on a live cluster: creation and options, ordered calls, handles and their
collection, async and threaded actors, concurrency groups, named actors, kill and the
special methods, log prefixes, bad input and the runtime context inside an actor."""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time

import pytest

import manta as ray
from manta._private.api.context import current_worker
from manta.exceptions import ActorAlreadyExistsError, ActorDiedError
from manta.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from tests.integration.conftest import run_driver
from tests.polling import process_gone, touch, wait_for_files, wait_until


@pytest.fixture(scope="module")
def cluster():
    """The shared 2-CPU cluster, plus a custom resource for the options test."""
    context = ray.init(num_cpus=2, num_gpus=0, resources={"custom": 2})
    yield context
    ray.shutdown()


# -- helpers ------------------------------------------------------------------------------------


def _driver_env(tmp_path):
    return {"MANTA_TMPDIR": str(tmp_path / "sessions")}


@ray.remote
class Counter:
    def __init__(self, start=0):
        self.value = start
        self.items = []

    def incr(self, by=1):
        self.value += by
        return self.value

    def append(self, item):
        self.items.append(item)

    def read(self):
        return list(self.items)

    def pid(self):
        return os.getpid()


# -- creation, options, ordering -----------------------------------------------------------------


def test_create_and_call(cluster):
    counter = Counter.remote(5)
    assert isinstance(counter, ray.actor.ActorHandle)
    assert ray.get(counter.incr.remote(), timeout=30) == 6
    assert ray.get([counter.incr.remote(by=2), counter.incr.remote(by=3)], timeout=30) == [8, 11]
    pid = ray.get(counter.pid.remote(), timeout=30)
    assert pid != os.getpid()
    assert ray.get(counter.pid.remote(), timeout=30) == pid  # one process hosts the actor
    ray.kill(counter)


def test_calls_from_one_caller_run_in_submission_order(cluster):
    log = Counter.remote()
    for i in range(200):
        log.append.remote(i)
    assert ray.get(log.read.remote(), timeout=60) == list(range(200))


@ray.remote
def _slow_value(value, delay):
    time.sleep(delay)
    return value


def test_a_call_waiting_for_its_argument_holds_back_later_calls(cluster):
    log = Counter.remote()
    log.append.remote(_slow_value.remote("first", 0.5))
    log.append.remote("second")
    log.append.remote(ray.put("third"))
    assert ray.get(log.read.remote(), timeout=30) == ["first", "second", "third"]


@ray.remote
class Probe:
    def describe(self):
        ctx = ray.get_runtime_context()
        return {
            "env": os.environ.get("ACTOR_FLAG"),
            "resources": ctx.get_assigned_resources(),
            "node_id": ctx.get_node_id(),
            "gpus": ray.get_gpu_ids(),
        }


def test_resource_and_placement_options_take_effect(cluster):
    node_id = ray.get_runtime_context().get_node_id()
    probe = Probe.options(
        num_cpus=1,
        num_gpus=0,
        resources={"custom": 1},
        memory=10 * 1024 * 1024,
        runtime_env={"env_vars": {"ACTOR_FLAG": "on"}},
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        max_restarts=1,
        max_task_retries=1,
        max_concurrency=1,
    ).remote()
    info = ray.get(probe.describe.remote(), timeout=30)
    assert info["env"] == "on"
    assert info["node_id"] == node_id
    assert info["gpus"] == []
    # The actor holds its resources while it lives and gives them back when it dies.
    wait_until(lambda: ray.available_resources().get("custom") == 1.0, what="the actor holding custom=1")
    ray.kill(probe)
    wait_until(lambda: ray.available_resources().get("custom") == 2.0, what="custom=1 returned")


def test_assigned_resources_inside_an_actor_method(cluster):
    # As in Ray: a method of an actor reports the resources the actor holds.
    probe = Probe.options(num_cpus=1, resources={"custom": 1}, memory=10 * 1024 * 1024).remote()
    resources = ray.get(probe.describe.remote(), timeout=30)["resources"]
    ray.kill(probe)
    assert resources == {"CPU": 1.0, "custom": 1.0, "memory": 10 * 1024 * 1024}


def test_an_actor_without_num_cpus_holds_no_cpu(cluster):
    actors = [Counter.remote() for _ in range(3)]  # more actors than CPUs: all get placed
    assert ray.get([a.incr.remote() for a in actors], timeout=60) == [1, 1, 1]

    @ray.remote
    def two_cpus():
        return "ran"

    # Both CPUs are still free for a task that needs them both.
    assert ray.get(two_cpus.options(num_cpus=2).remote(), timeout=30) == "ran"
    for a in actors:
        ray.kill(a)


@ray.remote
class Multi:
    @ray.method(num_returns=2)
    def pair(self):
        return "a", "b"

    def triple(self):
        return (1, 2, 3)

    def nothing(self):
        return None


def test_num_returns_by_decorator_and_options(cluster):
    multi = Multi.remote()
    first, second = multi.pair.remote()
    assert ray.get([first, second], timeout=30) == ["a", "b"]
    refs = multi.triple.options(num_returns=3).remote()
    assert isinstance(refs, list) and len(refs) == 3
    assert ray.get(refs, timeout=30) == [1, 2, 3]
    # options override the decorator's default
    assert ray.get(multi.pair.options(num_returns=1).remote(), timeout=30) == ("a", "b")
    assert multi.nothing.options(num_returns=0).remote() is None
    assert ray.get(multi.triple.remote(), timeout=30) == (1, 2, 3)
    with pytest.raises(ValueError, match="Invalid option keyword"):
        multi.triple.options(num_cpus=1)
    with pytest.raises(ValueError, match="Invalid option keyword"):
        ray.method(bogus=1)
    ray.kill(multi)


@ray.remote
class Flaky:
    def __init__(self):
        self.calls = 0

    @ray.method(retry_exceptions=[KeyError], max_task_retries=2, name="flaky-call")
    def fails_twice(self):
        self.calls += 1
        if self.calls % 3:  # two failures before every success
            raise KeyError(f"call {self.calls}")
        return self.calls


def test_method_decorator_retry_options_apply_and_travel_with_handles(cluster):
    flaky = Flaky.remote()
    assert ray.get(flaky.fails_twice.remote(), timeout=30) == 3  # retried on KeyError

    @ray.remote
    def call_through(handle):  # a handle that reached another process keeps the options
        return ray.get(handle.fails_twice.remote())

    assert ray.get(call_through.remote(flaky), timeout=30) == 6
    with pytest.raises(TypeError, match="max_task_retries"):
        flaky.fails_twice.options(max_task_retries="3")
    with pytest.raises(ValueError, match="retry_exceptions"):
        ray.method(retry_exceptions=["KeyError"])
    ray.kill(flaky)


# -- handles ----------------------------------------------------------------------------------------


@ray.remote
def _incr_from_task(handles, by):
    return ray.get(handles[0].incr.remote(by))


@ray.remote
def _incr_top_level(counter, by):
    return ray.get(counter.incr.remote(by))


@ray.remote
class Relay:
    def incr(self, counter, by):
        return ray.get(counter.incr.remote(by))

    def keep(self, counter):
        self.counter = counter

    def incr_kept(self, by):
        return ray.get(self.counter.incr.remote(by))


def test_handles_work_in_tasks_and_other_actors(cluster):
    counter = Counter.remote()
    assert ray.get(_incr_top_level.remote(counter, 1), timeout=30) == 1
    assert ray.get(_incr_from_task.remote([counter], 10), timeout=30) == 11
    relay = Relay.remote()
    assert ray.get(relay.incr.remote(counter, 100), timeout=30) == 111
    ray.get(relay.keep.remote(counter), timeout=30)
    assert ray.get(relay.incr_kept.remote(1000), timeout=30) == 1111
    assert ray.get(counter.incr.remote(0), timeout=30) == 1111
    ray.kill(relay)
    ray.kill(counter)


def test_an_actor_with_no_handles_left_exits(cluster):
    counter = Counter.remote()
    pid = ray.get(counter.pid.remote(), timeout=30)
    assert not process_gone(pid)
    del counter
    wait_until(lambda: process_gone(pid), timeout=30, what=f"the unreferenced actor's process {pid} exiting")


@ray.remote
def _use_later(handles, release):
    deadline = time.monotonic() + 30
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.02)
    return ray.get(handles[0].incr.remote(7)), ray.get(handles[0].pid.remote())


def test_an_actor_whose_handle_was_passed_on_is_not_ended_early(cluster, tmp_path):
    release = str(tmp_path / "release")
    counter = Counter.remote()
    pid = ray.get(counter.pid.remote(), timeout=30)
    ref = _use_later.remote([counter], release)
    del counter
    # Give the driver's collection every chance to run before the task uses the handle.
    for _ in range(5):
        ray.get(ray.put(None))
        time.sleep(0.1)
    assert not process_gone(pid)
    touch(release)
    assert ray.get(ref, timeout=30) == (7, pid)
    assert not process_gone(pid)


# -- async and threaded actors --------------------------------------------------------------------


@ray.remote
class AsyncWorker:
    def __init__(self):
        self.inside = 0
        self.most_inside = 0

    async def stamp(self, delay):
        start = time.monotonic()
        await asyncio.sleep(delay)
        return start, time.monotonic()

    async def gather_point(self, expected, limit):
        """Returns once ``expected`` calls are inside at once (or ``limit`` s pass)."""
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        deadline = time.monotonic() + limit
        while self.most_inside < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        self.inside -= 1
        return self.most_inside

    async def most(self):
        return self.most_inside

    async def await_refs(self, refs):
        values = [await r for r in refs]
        produced = await _slow_value.remote("made-inside", 0)
        return values, produced

    def sync_method(self):
        return "sync-ok"


def test_async_actor_runs_calls_concurrently(cluster):
    worker = AsyncWorker.remote()
    spans = ray.get([worker.stamp.remote(0.3) for _ in range(10)], timeout=60)
    assert len(spans) == 10
    # When the first call ended, others had already started: the calls overlapped.
    first_end = min(end for _, end in spans)
    assert sum(1 for start, _ in spans if start < first_end) >= 2, spans
    # Every one of 10 calls is inside at the same moment (the default limit is 1000).
    assert ray.get([worker.gather_point.remote(10, 20) for _ in range(10)], timeout=60) == [10] * 10
    # A plain def method of an async actor runs too.
    assert ray.get(worker.sync_method.remote(), timeout=30) == "sync-ok"
    ray.kill(worker)


def test_async_actor_max_concurrency_limits_calls(cluster):
    worker = AsyncWorker.options(max_concurrency=2).remote()
    # Each call waits (up to 1 s) for 3 calls to be inside: only 2 ever are.
    results = ray.get([worker.gather_point.remote(3, 1.0) for _ in range(4)], timeout=60)
    assert max(results) == 2
    assert ray.get(worker.most.remote(), timeout=30) == 2
    ray.kill(worker)


def test_await_object_ref_inside_an_async_method(cluster):
    worker = AsyncWorker.remote()
    refs = [ray.put(1), _slow_value.remote(2, 0.2)]
    values, produced = ray.get(worker.await_refs.remote(refs), timeout=30)
    assert values == [1, 2]
    assert produced == "made-inside"
    ray.kill(worker)


@ray.remote
class Threaded:
    def __init__(self, parties):
        self.barrier = threading.Barrier(parties, timeout=20)

    def meet(self):
        self.barrier.wait()  # raises BrokenBarrierError unless `parties` calls run at once
        return threading.get_ident()


def test_threaded_actor_runs_calls_concurrently(cluster):
    actor = Threaded.options(max_concurrency=3).remote(3)
    threads = ray.get([actor.meet.remote() for _ in range(3)], timeout=60)
    assert len(set(threads)) == 3
    ray.kill(actor)


@ray.remote(concurrency_groups={"io": 2, "compute": 1})
class Grouped:
    def __init__(self):
        self.lock = threading.Lock()
        self.inside = {"io": 0, "compute": 0}
        self.most = {"io": 0, "compute": 0}

    def _enter(self, group, release):
        with self.lock:
            self.inside[group] += 1
            self.most[group] = max(self.most[group], self.inside[group])
        deadline = time.monotonic() + 30
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.01)
        with self.lock:
            self.inside[group] -= 1
        return group

    @ray.method(concurrency_group="io")
    def io(self, release):
        return self._enter("io", release)

    def work(self, release):
        return self._enter("compute", release)

    def stats(self):  # the default group: not held up by the others
        with self.lock:
            return dict(self.inside), dict(self.most)


@pytest.mark.parametrize(
    ("groups", "expected"),
    [(None, {"io": 2, "compute": 1}), ({"io": 1, "compute": 3}, {"io": 1, "compute": 2})],
    ids=["declared", "from-options"],
)
def test_concurrency_groups_limit_each_group(cluster, tmp_path, groups, expected):
    release = str(tmp_path / "release")
    actor = (Grouped if groups is None else Grouped.options(concurrency_groups=groups)).remote()
    io_refs = [actor.io.remote(release) for _ in range(4)]
    compute_refs = [actor.work.options(concurrency_group="compute").remote(release) for _ in range(2)]
    wait_until(
        lambda: ray.get(actor.stats.remote(), timeout=30)[0] == expected,
        what=f"{expected} calls inside at once",
    )
    for _ in range(10):  # the others stay out while the first ones block
        inside, most = ray.get(actor.stats.remote(), timeout=30)
        assert most == expected, (inside, most)
        time.sleep(0.05)
    touch(release)
    assert ray.get(io_refs, timeout=30) == ["io"] * 4
    assert ray.get(compute_refs, timeout=30) == ["compute"] * 2
    assert ray.get(actor.stats.remote(), timeout=30)[1] == expected
    ray.kill(actor)


def test_undefined_concurrency_group_is_refused(cluster):
    @ray.remote
    class NoGroups:
        @ray.method(concurrency_group="missing")
        def f(self):
            return 1

    with pytest.raises(ValueError, match="missing"):
        NoGroups.remote()


# -- named actors -------------------------------------------------------------------------------------


def test_named_actors(cluster):
    first = Counter.options(name="named-counter").remote()
    found = ray.get_actor("named-counter")
    assert found == first
    assert ray.get(found.incr.remote(), timeout=30) == 1
    assert ray.get(first.incr.remote(), timeout=30) == 2

    with pytest.raises(ActorAlreadyExistsError) as info:
        Counter.options(name="named-counter").remote()
    assert isinstance(info.value, ValueError)
    assert "named-counter" in str(info.value)

    same = Counter.options(name="named-counter", get_if_exists=True).remote()
    assert same == first
    assert ray.get(same.incr.remote(), timeout=30) == 3

    with pytest.raises(ValueError, match="Failed to look up actor with name 'no-such-actor'"):
        ray.get_actor("no-such-actor")

    # The same name in another namespace is another actor.
    other = Counter.options(name="named-counter", namespace="elsewhere").remote(100)
    assert ray.get(other.incr.remote(), timeout=30) == 101
    assert ray.get(ray.get_actor("named-counter", namespace="elsewhere").incr.remote(), timeout=30) == 102
    hidden = Counter.options(name="hidden", namespace="secret").remote()
    ray.get(hidden.incr.remote(), timeout=30)
    with pytest.raises(ValueError, match="Failed to look up"):
        ray.get_actor("hidden")
    assert ray.get_actor("hidden", namespace="secret") == hidden

    mine = ray.util.list_named_actors()
    assert "named-counter" in mine and "hidden" not in mine
    everywhere = ray.util.list_named_actors(all_namespaces=True)
    namespace = ray.get_runtime_context().namespace
    for entry in (
        {"name": "named-counter", "namespace": namespace},
        {"name": "named-counter", "namespace": "elsewhere"},
        {"name": "hidden", "namespace": "secret"},
    ):
        assert entry in everywhere, everywhere

    # A dead actor's name is free again.
    ray.kill(first)
    wait_until(
        lambda: "named-counter" not in ray.util.list_named_actors(), what="the killed actor's name released"
    )
    with pytest.raises(ValueError, match="Failed to look up"):
        ray.get_actor("named-counter")
    again = Counter.options(name="named-counter").remote(50)
    assert ray.get(ray.get_actor("named-counter").incr.remote(), timeout=30) == 51
    for actor in (again, other, hidden):
        ray.kill(actor)


def test_arguments_for_an_actor_never_made_are_let_go(cluster):
    # get_if_exists found the actor, or the name was taken: the arguments given for the new
    # one were held for good.
    first = Counter.options(name="given-again").remote()
    assert ray.get(first.incr.remote(), timeout=30) == 1
    worker = current_worker()
    for get_if_exists in (True, False):
        start = ray.put(5)
        start_id = start.id
        try:
            Counter.options(name="given-again", get_if_exists=get_if_exists).remote(start)
        except ActorAlreadyExistsError:
            assert not get_if_exists
        del start

        def freed(object_id=start_id):
            worker.objects.collect_references()
            return not worker.references.knows(object_id)

        wait_until(freed, what="the argument to be freed")
    ray.kill(first)


def test_get_if_exists_creates_when_missing(cluster):
    created = Counter.options(name="made-on-demand", get_if_exists=True).remote(10)
    assert ray.get(created.incr.remote(), timeout=30) == 11
    assert ray.get_actor("made-on-demand") == created
    with pytest.raises(ValueError, match="needs a name"):
        Counter.options(get_if_exists=True).remote()
    ray.kill(created)


def test_detached_actor_in_a_cluster(cluster):
    detached = Counter.options(name="detached-here", lifetime="detached", namespace="det").remote()
    assert ray.get(detached.incr.remote(), timeout=30) == 1
    assert ray.get(ray.get_actor("detached-here", namespace="det").incr.remote(), timeout=30) == 2
    pid = ray.get(detached.pid.remote(), timeout=30)
    del detached  # a detached actor outlives its handles
    for _ in range(5):
        ray.get(ray.put(None))
        time.sleep(0.1)
    assert not process_gone(pid)
    detached = ray.get_actor("detached-here", namespace="det")
    assert ray.get(detached.incr.remote(), timeout=30) == 3
    with pytest.raises(ValueError, match="lifetime"):
        Counter.options(lifetime="forever").remote()
    ray.kill(detached)


# -- kill and the special methods ----------------------------------------------------------------------


def test_kill_ends_the_actor(cluster):
    counter = Counter.options(max_restarts=0).remote()
    pid = ray.get(counter.pid.remote(), timeout=30)
    ray.kill(counter)
    with pytest.raises(ActorDiedError, match=r"manta\.kill") as info:
        ray.get(counter.incr.remote(), timeout=30)
    assert info.value.actor_id == counter._actor_id.hex()
    wait_until(lambda: process_gone(pid), what="the killed actor's process exiting")
    with pytest.raises(ActorDiedError, match=r"manta\.kill"):
        ray.get(counter.incr.remote(), timeout=30)


@ray.remote
class Graceful:
    def __init__(self, flag):
        self.flag = flag
        self.done = []

    def step(self, i):
        time.sleep(0.05)
        self.done.append(i)
        return i

    def pid(self):
        return os.getpid()

    def leave(self):
        ray.actor.exit_actor()
        return "not reached"

    def __ray_shutdown__(self):
        touch(self.flag)


def test_ready_and_terminate(cluster, tmp_path):
    flag = str(tmp_path / "shutdown_hook_ran")
    actor = Graceful.options(max_restarts=2).remote(flag)
    assert ray.get(actor.__ray_ready__.remote(), timeout=30) is True
    pid = ray.get(actor.pid.remote(), timeout=30)
    steps = [actor.step.remote(i) for i in range(5)]
    terminate = actor.__ray_terminate__.remote()
    assert ray.get(steps, timeout=30) == list(range(5))  # earlier calls complete
    with pytest.raises(ActorDiedError):
        ray.get(terminate, timeout=30)
    wait_for_files(flag)
    wait_until(lambda: process_gone(pid), what="the terminated actor's process exiting")
    with pytest.raises(ActorDiedError):  # not restarted, although max_restarts=2
        ray.get(actor.step.remote(9), timeout=30)


def test_exit_actor_ends_the_actor_and_runs_the_hook(cluster, tmp_path):
    flag = str(tmp_path / "shutdown_hook_ran")
    actor = Graceful.options(max_restarts=2).remote(flag)
    pid = ray.get(actor.pid.remote(), timeout=30)
    with pytest.raises(ActorDiedError, match="exit_actor"):
        ray.get(actor.leave.remote(), timeout=30)
    wait_for_files(flag)
    wait_until(lambda: process_gone(pid), what="the exited actor's process exiting")
    with pytest.raises(ActorDiedError, match="exit_actor"):
        ray.get(actor.step.remote(1), timeout=30)
    # Ray's type and the start of its message, which its users match on.
    with pytest.raises(TypeError, match="exit_actor API is called on a non-actor worker"):
        ray.actor.exit_actor()  # not in an actor
    assert "non-actor worker (a task)" in ray.get(_exit_actor_in_a_task.remote(), timeout=30)


@ray.remote
def _exit_actor_in_a_task():
    try:
        ray.actor.exit_actor()
    except TypeError as e:
        return str(e)
    return "no error"


# -- the invocation decorator --------------------------------------------------------------------------


def _split_first_argument(invoke):
    """Caller side: send the first argument twice, and hand the kwargs back untouched."""

    def invocation(args, kwargs):
        return invoke([args[0], args[0]], {}), kwargs

    return invocation


def _two_into_one(method):
    """Actor side: add two arguments up into one."""

    def execution(self, b, c):
        return method(self, b + c)

    execution.__ray_invocation_decorator__ = _split_first_argument
    return execution


@ray.remote
class Decorated:
    @_two_into_one
    def plus_one(self, x):
        return x + 1

    def plain(self, x):
        return x


def test_an_invocation_decorator_wraps_the_callers_side(cluster):
    actor = Decorated.remote()
    ref, extra = actor.plus_one.remote(3, kwarg=3)  # what the decorator returns, as in Ray
    assert isinstance(ref, ray.ObjectRef) and extra == {"kwarg": 3}
    assert ray.get(ref, timeout=30) == 7  # 3 + 3 + 1
    ref, _ = actor.plus_one.options(name="named").remote(5)  # options keep the decorator
    assert ray.get(ref, timeout=30) == 11
    assert ray.get(actor.plain.remote(2), timeout=30) == 2

    @ray.remote
    def through_a_task(handle):  # a handle passed to a task keeps it too
        ref, _ = handle.plus_one.remote(1)
        return ray.get(ref)

    assert ray.get(through_a_task.remote(actor), timeout=30) == 3
    ray.kill(actor)


# -- bad input -------------------------------------------------------------------------------------------


def test_bad_input(cluster):
    counter = Counter.remote()
    with pytest.raises(AttributeError) as info:
        counter.no_such_method.remote()
    message = str(info.value)
    assert "Counter" in message and "no_such_method" in message
    assert "incr" in message and "append" in message  # lists the methods it has
    with pytest.raises(TypeError, match="Actors cannot be instantiated directly"):
        Counter()
    with pytest.raises(TypeError, match="cannot be called directly"):
        counter.incr()
    with pytest.raises(ValueError, match="only supported for actors"):
        ray.kill("not an actor")
    with pytest.raises(ValueError, match="only supported for actors"):
        ray.kill(ray.put(1))
    with pytest.raises(TypeError, match="lock") as info:
        Counter.remote(start=threading.Lock())
    assert "'start'" in str(info.value)
    with pytest.raises(TypeError, match=r"Counter\.remote\(\)"):
        Counter.remote(1, 2, 3)
    with pytest.raises(TypeError):
        Counter.remote(unknown=1)
    with pytest.raises(ValueError, match="max_concurrency"):
        Counter.options(max_concurrency=0).remote()
    # The actor is unharmed by all of that.
    assert ray.get(counter.incr.remote(), timeout=30) == 1
    ray.kill(counter)


def test_actor_needing_more_than_any_node_has_stays_pending(cluster):
    huge = Counter.options(num_cpus=100).remote()
    ref = huge.incr.remote()
    ready, not_ready = ray.wait([ref], timeout=1.0)
    assert ready == [] and not_ready == [ref]
    ray.kill(huge)
    with pytest.raises(ActorDiedError):
        ray.get(ref, timeout=30)


def test_pending_actor_warns_the_driver_once(tmp_path):
    proc = run_driver(
        """
        import manta
        manta.init("local", num_cpus=1, num_gpus=0)

        @manta.remote(num_cpus=100)
        class Huge:
            def f(self):
                return 1

        huge = Huge.remote()
        refs = [huge.f.remote() for _ in range(3)]
        ready, _ = manta.wait(refs, timeout=2.0)
        print("READY", len(ready))
        more = [huge.f.remote() for _ in range(3)]
        ready, _ = manta.wait(more, timeout=1.0)
        print("READY", len(ready))
        manta.shutdown()
        """,
        env=_driver_env(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["READY 0", "READY 0"], proc.stdout
    warnings = [line for line in proc.stderr.splitlines() if "no node in the cluster can provide" in line]
    assert len(warnings) == 1, proc.stderr
    assert "Huge" in warnings[0] and "100" in warnings[0]


# -- logs and the runtime context -------------------------------------------------------------------------


def test_actor_logs_reach_the_driver_with_a_prefix(tmp_path):
    proc = run_driver(
        """
        import os, sys, time
        import manta

        class Tee:
            # Records what the driver prints, so the script can wait for the actors' lines.
            def __init__(self, stream):
                self.stream, self.seen = stream, ""
            def write(self, text):
                self.seen += text
                return self.stream.write(text)
            def flush(self):
                self.stream.flush()
            def __getattr__(self, name):
                return getattr(self.stream, name)

        manta.init("local", num_cpus=1, num_gpus=0)
        sys.stdout = tee = Tee(sys.stdout)

        @manta.remote
        class Talker:
            def say(self, text):
                print(text)
                return os.getpid()

        @manta.remote
        class Fancy:
            def __repr__(self):
                return "Fancy(7)"
            def say(self, text):
                print(text)
                return os.getpid()

        talker, fancy = Talker.remote(), Fancy.remote()
        pids = manta.get([talker.say.remote("hello-from-talker"), fancy.say.remote("hello-from-fancy")])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all(
            w in tee.seen for w in ("hello-from-talker", "hello-from-fancy")
        ):
            time.sleep(0.05)
        print("PIDS", *pids)
        manta.shutdown()
        """,
        env=_driver_env(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    pids = re.search(r"^PIDS (\d+) (\d+)$", proc.stdout, re.M)
    assert pids, proc.stdout
    talker_pid, fancy_pid = pids.groups()
    assert re.search(
        rf"^\(Talker pid={talker_pid}, node=[0-9a-f]{{8}}\) hello-from-talker$", proc.stdout, re.M
    ), proc.stdout
    assert re.search(
        rf"^\(Fancy\(7\) pid={fancy_pid}, node=[0-9a-f]{{8}}\) hello-from-fancy$", proc.stdout, re.M
    ), proc.stdout


@ray.remote
class Introspective:
    def context(self):
        ctx = ray.get_runtime_context()
        return ctx.get_actor_id(), ctx.current_actor

    def ping(self):
        return "pong"


def test_runtime_context_inside_an_actor(cluster):
    actor = Introspective.remote()
    actor_id, handle = ray.get(actor.context.remote(), timeout=30)
    assert re.fullmatch("[0-9a-f]{32}", actor_id), actor_id
    assert actor_id == actor._actor_id.hex()
    assert handle == actor
    assert isinstance(handle, ray.actor.ActorHandle)
    assert ray.get(handle.ping.remote(), timeout=30) == "pong"
    assert ray.get_runtime_context().get_actor_id() is None  # the driver is no actor
    ray.kill(actor)


def test_wrong_arguments_to_a_method_fail_at_the_call(cluster):
    @ray.remote
    class Takes:
        def one(self, x, y=2):
            return x + y

        @staticmethod
        def static(a):
            return a

    actor = Takes.remote()
    with pytest.raises(TypeError, match=r"Takes.one.remote\(\): missing a required argument: 'x'"):
        actor.one.remote()
    with pytest.raises(TypeError, match="too many positional arguments"):
        actor.one.remote(1, 2, 3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        actor.one.remote(1, z=3)
    assert ray.get([actor.one.remote(1), actor.one.remote(1, y=5), actor.static.remote(7)]) == [3, 6, 7]


def test_calls_piling_up_behind_an_actor_warn_the_driver(cluster, tmp_path):
    from manta.compat.ray_private.test_utils import get_error_message, init_error_pubsub

    release = tmp_path / "release"

    @ray.remote
    class Slow:
        def wait(self, path):
            while not os.path.exists(path):
                time.sleep(0.02)

        def f(self):
            return 1

    subscriber = init_error_pubsub()
    try:
        actor = Slow.remote()
        first = actor.wait.remote(str(release))
        calls = [actor.f.remote() for _ in range(5001)]
        [error] = get_error_message(subscriber, 1, "excess_queueing_warning", timeout=30)
        assert "More than 5000 tasks are pending submission to actor Slow" in error["error_message"]
        release.touch()
        ray.get(first, timeout=60)
        assert sum(ray.get(calls, timeout=120)) == 5001
    finally:
        subscriber.close()


def test_a_method_is_called_even_where_an_attribute_shadows_its_name(cluster):
    @ray.remote
    class Shadowed:
        def __init__(self):
            self.flag = True  # an instance attribute with a method's name

        def flag(self):  # Ray calls the class's method
            return "method"

    assert ray.get(Shadowed.remote().flag.remote(), timeout=30) == "method"
