"""``get_runtime_context()``, ``get_gpu_ids()`` and ``nodes()`` on the driver and in tasks."""

from __future__ import annotations

import os
import re
import warnings

import pytest

import manta as ray
from manta.util.annotations import RayDeprecationWarning


def _is_hex(value, length: int) -> bool:
    return isinstance(value, str) and re.fullmatch(f"[0-9a-f]{{{length}}}", value) is not None


@ray.remote
def _context_in_task():
    ctx = ray.get_runtime_context()
    return {
        "job_id": ctx.get_job_id(),
        "node_id": ctx.get_node_id(),
        "worker_id": ctx.get_worker_id(),
        "task_id": ctx.get_task_id(),
        "task_name": ctx.get_task_name(),
        "actor_id": ctx.get_actor_id(),
        "namespace": ctx.namespace,
        "gpu_ids": ray.get_gpu_ids(),
        "pid": os.getpid(),
    }


def test_driver_context(cluster):
    ctx = ray.get_runtime_context()
    assert _is_hex(ctx.get_job_id(), 8), ctx.get_job_id()
    assert _is_hex(ctx.get_node_id(), 56), ctx.get_node_id()
    assert _is_hex(ctx.get_worker_id(), 56), ctx.get_worker_id()
    assert ctx.get_task_id() is None
    assert ctx.get_actor_id() is None
    assert isinstance(ctx.namespace, str)
    assert ray.get_gpu_ids() == []
    with pytest.raises(AssertionError):  # as in Ray: only available inside a task
        ctx.get_assigned_resources()


def test_task_context_ids(cluster):
    driver = ray.get_runtime_context()
    first, second = ray.get([_context_in_task.remote(), _context_in_task.remote()], timeout=30)
    for info in (first, second):
        assert _is_hex(info["task_id"], 48), info["task_id"]
        assert info["job_id"] == driver.get_job_id()
        assert info["node_id"] == driver.get_node_id()
        assert _is_hex(info["worker_id"], 56), info["worker_id"]
        assert info["worker_id"] != driver.get_worker_id()
        assert info["actor_id"] is None
        assert info["namespace"] == driver.namespace
        assert info["pid"] != os.getpid()
    assert first["task_id"] != second["task_id"]


def test_task_ids_differ_between_sequential_tasks_on_one_worker(cluster):
    infos = [ray.get(_context_in_task.remote(), timeout=30) for _ in range(4)]
    assert len({info["task_id"] for info in infos}) == 4


def test_task_name_is_function_name_or_option(cluster):
    assert ray.get(_context_in_task.remote(), timeout=30)["task_name"] == "_context_in_task"
    named = _context_in_task.options(name="my-task")
    assert ray.get(named.remote(), timeout=30)["task_name"] == "my-task"
    assert ray.get(_context_in_task.remote(), timeout=30)["task_name"] == "_context_in_task"


def test_nested_task_context(cluster):
    @ray.remote
    def outer():
        mine = ray.get_runtime_context().get_task_id()
        child = ray.get(_context_in_task.remote())
        return mine, child

    mine, child = ray.get(outer.remote(), timeout=30)
    assert _is_hex(mine, 48)
    assert _is_hex(child["task_id"], 48)
    assert mine != child["task_id"]
    assert child["job_id"] == ray.get_runtime_context().get_job_id()


def test_gpu_ids_empty_in_cpu_task(cluster):
    assert ray.get(_context_in_task.remote(), timeout=30)["gpu_ids"] == []


def test_nodes(cluster):
    nodes = ray.nodes()
    assert isinstance(nodes, list)
    assert len(nodes) == 1
    (node,) = nodes
    assert _is_hex(node["NodeID"], 56), node["NodeID"]
    assert node["NodeID"] == ray.get_runtime_context().get_node_id()
    assert node["Alive"] is True
    assert node["NodeManagerAddress"] == "127.0.0.1"
    assert node["Resources"]["CPU"] == 2.0


# -- placement groups ------------------------------------------------------------------------------


@ray.remote
def _group_view(spawn_child: bool = False):
    ctx = ray.get_runtime_context()
    child = ray.get(_group_view.remote()) if spawn_child else None  # recursive, with a default
    return ctx.get_assigned_resources(), ctx.get_placement_group_id(), child


@ray.remote(num_cpus=1)
class _InGroup:
    def view(self):
        ctx = ray.get_runtime_context()
        return ctx.get_assigned_resources(), ctx.get_placement_group_id()


def test_work_in_a_placement_group_sees_its_group_and_its_own_resource_names(cluster):
    from manta.util.placement_group import placement_group, remove_placement_group
    from manta.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    pg = placement_group([{"CPU": 1}])
    assert pg.wait(30)
    try:
        for index in (-1, 0):  # any bundle, and a named one
            strategy = PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=index)
            resources, group, _ = ray.get(
                _group_view.options(scheduling_strategy=strategy).remote(), timeout=30
            )
            assert resources == {"CPU": 1.0}  # not CPU_group_0_<id>, nor the bundle marker
            assert group == pg.id.hex()
        actor = _InGroup.options(scheduling_strategy=PlacementGroupSchedulingStrategy(pg)).remote()
        assert ray.get(actor.view.remote(), timeout=30) == ({"CPU": 1.0}, pg.id.hex())
        ray.kill(actor)
        # A child captured into the group reports it too; one outside a group reports none.
        capture = PlacementGroupSchedulingStrategy(pg, placement_group_capture_child_tasks=True)
        parent = _group_view.options(scheduling_strategy=capture, num_cpus=0).remote(True)
        _, parent_group, (child_resources, child_group, _) = ray.get(parent, timeout=30)
        assert parent_group == child_group == pg.id.hex() and child_resources == {"CPU": 1.0}
    finally:
        remove_placement_group(pg)
    assert ray.get(_group_view.remote(), timeout=30)[:2] == ({"CPU": 1.0}, None)
    assert ray.get_runtime_context().get_placement_group_id() is None  # the driver


# -- Ray's properties and deprecated ids ---------------------------------------------------------------


@ray.remote(max_restarts=1)
class _Restartable:
    def context(self):
        ctx = ray.get_runtime_context()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return ctx.get(), ctx.actor_id, ctx.task_id, ctx.was_current_actor_reconstructed

    def die(self):
        os._exit(1)


@ray.remote
def _deprecated_in_task():
    ctx = ray.get_runtime_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            reconstructed = ctx.was_current_actor_reconstructed
        except AssertionError as e:
            reconstructed = e
        return ctx.get(), ctx.actor_id, ctx.task_id, reconstructed


def test_deprecated_ids_warn_as_in_ray_and_return_typed_ids(cluster):
    ctx = ray.get_runtime_context()
    with pytest.warns(RayDeprecationWarning, match="get_job_id"):
        assert ctx.job_id == ray.JobID.from_hex(ctx.get_job_id())
    with pytest.warns(DeprecationWarning, match="get_node_id"):  # a DeprecationWarning, as in Ray
        assert ctx.node_id == ray.NodeID.from_hex(ctx.get_node_id())
    with pytest.warns(RayDeprecationWarning):
        assert ctx.current_placement_group_id.is_nil()
    with pytest.warns(RayDeprecationWarning):
        info = ctx.get()
    assert info["job_id"].hex() == ctx.get_job_id() and info["node_id"].hex() == ctx.get_node_id()
    assert set(info) == {"job_id", "node_id", "namespace"}
    for name in ("task_id", "actor_id", "was_current_actor_reconstructed"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            with pytest.raises(AssertionError):  # only in a task or actor, as in Ray
                getattr(ctx, name)

    got, actor_id, task_id, reconstructed = ray.get(_deprecated_in_task.remote(), timeout=30)
    assert set(got) == {"job_id", "node_id", "namespace", "task_id"} and got["task_id"] == task_id
    assert isinstance(task_id, ray.TaskID) and actor_id is None
    assert isinstance(reconstructed, AssertionError)  # not an actor


def test_actor_context_has_its_id_and_knows_when_it_was_restarted(cluster):
    actor = _Restartable.remote()
    got, actor_id, task_id, reconstructed = ray.get(actor.context.remote(), timeout=30)
    assert isinstance(actor_id, ray.ActorID) and actor_id.hex() == actor._actor_id.hex()
    assert got["actor_id"] == actor_id and got["task_id"] == task_id
    assert reconstructed is False  # a property, as in Ray
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(actor.die.remote(), timeout=30)
    assert ray.get(actor.context.remote(), timeout=60)[3] is True  # restarted once
    ray.kill(actor)


# -- OMP_NUM_THREADS ---------------------------------------------------------------------------------


@ray.remote
def _omp_threads():
    return os.environ.get("OMP_NUM_THREADS")


@ray.remote(num_cpus=0)
class _OmpActor:
    def threads(self):
        return os.environ.get("OMP_NUM_THREADS")


@pytest.mark.skipif("OMP_NUM_THREADS" in os.environ, reason="the user's OMP_NUM_THREADS wins, as in Ray")
def test_omp_num_threads_follows_the_tasks_cpus_unless_the_user_sets_it(cluster):
    # Whole CPUs, at least one; each task on a reused worker gets its own value.
    for num_cpus, expected in ((2, "2"), (None, "1"), (0.5, "1"), (0, "1"), (1.5, "1"), (2, "2")):
        options = {} if num_cpus is None else {"num_cpus": num_cpus}
        assert ray.get(_omp_threads.options(**options).remote(), timeout=30) == expected, num_cpus
    env = {"env_vars": {"OMP_NUM_THREADS": "7"}}
    assert ray.get(_omp_threads.options(num_cpus=2, runtime_env=env).remote(), timeout=30) == "7"
    actors = [_OmpActor.remote(), _OmpActor.options(num_cpus=2).remote()]
    assert ray.get([a.threads.remote() for a in actors], timeout=30) == ["1", "2"]
    for actor in actors:
        ray.kill(actor)
