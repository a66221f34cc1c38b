"""manta.util.state: the listings that read the cluster's current state."""

from __future__ import annotations

import logging
import os

import pytest

import manta as ray
from manta.util.placement_group import placement_group, remove_placement_group
from manta.util.state import (
    get_actor,
    get_job,
    get_node,
    get_objects,
    get_placement_group,
    get_worker,
    list_actors,
    list_jobs,
    list_nodes,
    list_objects,
    list_placement_groups,
    list_workers,
    summarize_actors,
    summarize_objects,
)
from tests.polling import wait_until


def test_list_objects_has_one_record_per_reference(cluster):
    big = ray.put(bytes(300_000))
    small = ray.put(7)
    ids = {r.object_id for r in list_objects()}
    assert {big.hex(), small.hex()} <= ids
    [record] = list_objects(filters=[("object_id", "=", big.hex())])
    assert record.reference_type == "LOCAL_REFERENCE" and record.type == "DRIVER"
    assert record["object_size"] >= 300_000  # read as a dict too
    assert all(r.object_id != big.hex() for r in list_objects(filters=[("object_id", "!=", big.hex())]))
    assert len(list_objects(limit=1)) == 1
    with pytest.raises(ValueError, match="Unsupported filter predicate"):
        list_objects(filters=[("object_id", ">", "x")])


def test_a_dropped_ref_leaves_the_listing(cluster):
    ref = ray.put(bytes(300_000))
    object_id = ref.hex()
    del ref
    wait_until(lambda: not list_objects(filters=[("object_id", "=", object_id)]), timeout=30)


def test_nodes_and_placement_groups(cluster):
    [node] = list_nodes()
    assert node["state"] == "ALIVE" and node["is_head_node"]
    assert list_nodes(filters=[("state", "=", "DEAD")]) == []
    group = placement_group([{"CPU": 1}])
    ray.get(group.ready())
    [row] = list_placement_groups(filters=[("placement_group_id", "=", group.id.hex())])
    assert row["state"] == "CREATED"
    remove_placement_group(group)


def test_workers_are_listed_running_and_ended(cluster):
    @ray.remote
    class Doomed:
        def pid(self):
            return os.getpid()

    [driver] = list_workers(filters=[("pid", "=", os.getpid())])
    assert driver.worker_type == "DRIVER" and driver.is_alive
    doomed = Doomed.remote()
    pid = ray.get(doomed.pid.remote())
    [worker] = list_workers(filters=[("pid", "=", pid)])
    assert worker.worker_type == "WORKER" and worker.is_alive and worker.exit_type is None
    assert worker.start_time_ms is None  # a detail field
    ray.kill(doomed)
    wait_until(lambda: not list_workers(filters=[("pid", "=", pid)])[0].is_alive, timeout=30)
    ended = get_worker(worker.worker_id)
    assert ended.exit_type == "INTENDED_SYSTEM_EXIT" and "signal 9" in ended.exit_detail
    assert ended.end_time_ms >= ended.start_time_ms >= ended.worker_launch_time_ms > 0
    assert get_worker("ab" * 28) is None


def test_this_driver_is_a_running_job(cluster):
    job_id = ray.get_runtime_context().get_job_id()
    [job] = list_jobs(filters=[("job_id", "=", job_id)])
    assert job.type == "DRIVER" and job.status == "RUNNING" and job.driver_info.pid == str(os.getpid())
    assert get_job(job_id) == job
    assert get_job("ffffffff") is None


def test_get_by_id_fills_the_detail_fields(cluster):
    @ray.remote
    class Kept:
        def ready(self):
            return True

    kept = Kept.options(name="kept-for-get").remote()
    ray.get(kept.ready.remote())
    actor = get_actor(kept._actor_id.hex())
    assert actor.class_name == "Kept" and actor.num_restarts == 0 and actor.is_detached is False
    assert get_actor("00" * 16) is None
    [node] = list_nodes()
    assert get_node(node.node_id) == node
    big = ray.put(bytes(200_000))
    [ref] = get_objects(big.hex())
    assert ref.object_size >= 200_000 and ref.pid == os.getpid()
    assert get_objects("00" * 28) == []
    group = placement_group([{"CPU": 1}], name="gotten")
    ray.get(group.ready())
    found = get_placement_group(group.id.hex())
    assert found.name == "gotten" and found.bundles[0]["unit_resources"] == {"CPU": 1.0}
    remove_placement_group(group)
    ray.kill(kept)


def test_summaries_count_actors_and_objects(cluster):
    @ray.remote
    class Counted:
        def ready(self):
            return True

    actors = [Counted.remote() for _ in range(2)]
    ray.get([a.ready.remote() for a in actors])
    summary = summarize_actors()["cluster"]
    assert summary["summary"]["Counted"]["state_counts"]["ALIVE"] == 2
    assert summary["total_actors"] >= 2 and summary["summary_by"] == "class"
    refs = [ray.put(bytes(100_000)) for _ in range(3)]
    objects = summarize_objects()["cluster"]
    assert objects["total_objects"] >= 3 and objects["total_size_mb"] >= 0.28
    group = next(iter(objects["summary"].values()))
    assert group["ref_type_counts"]["LOCAL_REFERENCE"] >= 3
    del refs
    for actor in actors:
        ray.kill(actor)


def test_bad_filters_and_limits_say_what_is_valid(cluster, caplog):
    with pytest.raises(ValueError, match="filterable columns are actor_id, class_name, state"):
        list_actors(filters=[("colour", "=", "red")])
    with pytest.raises(ValueError, match="use one of =, !="):
        list_nodes(filters=[("state", "~", "ALIVE")])
    with pytest.raises(ValueError, match="is \\(column, operator, value\\)"):
        list_workers(filters=[("state", "=")])
    with pytest.raises(ValueError, match="limit must be at least 0"):
        list_jobs(limit=-1)
    manta_logger = logging.getLogger("manta")  # it does not propagate to the root's
    manta_logger.addHandler(caplog.handler)
    try:
        assert len(list_nodes(limit=10**9)) == 1
    finally:
        manta_logger.removeHandler(caplog.handler)
    assert "at most 10000" in caplog.text


def test_address_reads_the_cluster_from_outside_the_driver(cluster):
    """A gcs address makes a connection of its own (as from a shell on the head)."""
    address = cluster.address_info["address"]
    [node] = list_nodes(address=address)
    assert node.state == "ALIVE"
    assert {w.pid for w in list_workers(address=address)} == {w.pid for w in list_workers()}
    with pytest.raises(ConnectionError, match="no Manta cluster with address"):
        list_nodes(address="127.0.0.1:1")


def test_list_actors_has_the_dead_ones_too(cluster):
    @ray.remote
    class Named:
        def pid(self):
            import os

            return os.getpid()

    alive = Named.options(name="listed").remote()
    pid = ray.get(alive.pid.remote())
    gone = Named.remote()
    gone_pid = ray.get(gone.pid.remote())
    ray.kill(gone)
    wait_until(
        lambda: list_actors(filters=[("actor_id", "=", gone._actor_id.hex()), ("state", "=", "DEAD")]),
        timeout=30,
    )
    [dead] = list_actors(filters=[("actor_id", "=", gone._actor_id.hex())])
    assert dead.pid == gone_pid and dead.node_id == list_nodes()[0].node_id  # where it ran, as in Ray
    [record] = list_actors(filters=[("name", "=", "listed")])
    assert record["state"] == "ALIVE" and record["pid"] == pid and record["class_name"] == "Named"
    assert record.state == "ALIVE"  # by attribute too, as Ray's records are read
    ray.kill(alive)


def test_get_node_ip_address_is_the_nodes(cluster):
    from manta.util import get_node_ip_address

    [node] = list_nodes()
    assert get_node_ip_address() == node["node_ip"]


def test_the_cli_lists_gets_and_summarizes_every_resource(cluster):
    import json

    from click.testing import CliRunner

    from manta.cli.main import cli

    def manta(*args):
        result = CliRunner().invoke(cli, [*args, "--address", cluster.address_info["address"]])
        return result.exit_code, result.output

    @ray.remote
    class Shown:
        def ready(self):
            return True

    shown = Shown.options(name="shown-in-cli").remote()
    ray.get(shown.ready.remote())
    code, out = manta("list", "actors", "--filter", "name=shown-in-cli")
    assert code == 0 and shown._actor_id.hex() in out and "Shown" in out  # a table, its own id whole
    code, out = manta("list", "workers", "--filter", "worker_type=DRIVER", "--format", "json")
    assert code == 0 and [w["pid"] for w in json.loads(out)] == [os.getpid()]
    code, out = manta("get", "actors", shown._actor_id.hex(), "--format", "json")
    assert code == 0 and json.loads(out)[0]["num_restarts"] == 0
    code, out = manta("summary", "actors", "--format", "json")
    assert code == 0 and json.loads(out)["cluster"]["summary"]["Shown"]["state_counts"] == {"ALIVE": 1}
    code, out = manta("summary", "objects")
    assert code == 0 and "objects" in out
    for resource in ("nodes", "jobs", "placement_groups", "objects", "runtime_envs"):
        code, out = manta("list", resource)
        assert code == 0, (resource, out)
    code, out = manta("get", "runtime_envs", "x")
    assert code == 2 and "listed, not gotten by id" in out
    ray.kill(shown)


def test_runtime_envs_are_listed_per_node_with_their_workers_and_failures(cluster):
    from manta.exceptions import RuntimeEnvSetupError
    from manta.util.state import list_runtime_envs

    @ray.remote(runtime_env={"env_vars": {"LISTED_ENV": "yes"}})
    def in_env():
        return os.environ["LISTED_ENV"]

    def ours(record):
        return (record.runtime_env.get("env_vars") or {}).get("LISTED_ENV") == "yes"

    assert ray.get(in_env.remote()) == "yes"
    wait_until(lambda: any(ours(r) for r in list_runtime_envs()), timeout=30)
    [env] = [r for r in list_runtime_envs(detail=True) if ours(r)]
    assert env.success and env.ref_cnt == 1 and env.error is None and env.creation_time_ms > 0
    assert env.node_id == list_nodes()[0].node_id

    @ray.remote(runtime_env={"py_modules": ["gcs://_manta_pkg_0123456789abcdef.zip"]}, max_retries=0)
    def broken():
        return 1

    with pytest.raises(RuntimeEnvSetupError):
        ray.get(broken.remote())
    failed = lambda: [r for r in list_runtime_envs(detail=True) if not r.success]  # noqa: E731
    wait_until(failed, timeout=30)
    assert "RuntimeEnvSetupError" in failed()[0].error and failed()[0].ref_cnt == 0


def test_an_actor_not_yet_created_is_pending_creation_as_in_ray(cluster):
    @ray.remote(num_gpus=1)
    class Infeasible:
        pass

    waiting = Infeasible.remote()
    wait_until(lambda: list_actors(filters=[("actor_id", "=", waiting._actor_id.hex())]), timeout=30)
    [record] = list_actors(filters=[("actor_id", "=", waiting._actor_id.hex())])
    assert record.state == "PENDING_CREATION"
    counts = summarize_actors()["cluster"]["summary"]["Infeasible"]["state_counts"]
    assert counts == {"PENDING_CREATION": 1}
    ray.kill(waiting)
