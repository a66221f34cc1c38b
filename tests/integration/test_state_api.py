"""manta.util.state: the listings that read the cluster's current state."""

from __future__ import annotations

import pytest

import manta as ray
from manta.util.placement_group import placement_group, remove_placement_group
from manta.util.state import list_actors, list_nodes, list_objects, list_placement_groups, list_workers
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
    with pytest.raises(ValueError, match="unsupported filter predicate"):
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


def test_worker_listings_say_they_are_not_there_yet(cluster):
    with pytest.raises(NotImplementedError, match="list_workers is not available yet"):
        list_workers()


def test_list_actors_has_the_dead_ones_too(cluster):
    @ray.remote
    class Named:
        def pid(self):
            import os

            return os.getpid()

    alive = Named.options(name="listed").remote()
    pid = ray.get(alive.pid.remote())
    gone = Named.remote()
    ray.get(gone.pid.remote())
    ray.kill(gone)
    wait_until(
        lambda: list_actors(filters=[("actor_id", "=", gone._actor_id.hex()), ("state", "=", "DEAD")]),
        timeout=30,
    )
    [record] = list_actors(filters=[("name", "=", "listed")])
    assert record["state"] == "ALIVE" and record["pid"] == pid and record["class_name"] == "Named"
    assert record.state == "ALIVE"  # by attribute too, as Ray's records are read
    ray.kill(alive)


def test_get_node_ip_address_is_the_nodes(cluster):
    from manta.util import get_node_ip_address

    [node] = list_nodes()
    assert get_node_ip_address() == node["node_ip"]
