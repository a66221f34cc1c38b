"""``get_runtime_context()``, ``get_gpu_ids()`` and ``nodes()`` on the driver and in tasks."""

from __future__ import annotations

import os
import re

import pytest

import manta as ray


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
