"""``manta.cluster_utils.Cluster`` as Ray's tests use it: its address before and after the
head exists, init(address="auto") finding it here and in a child process, and float sizes."""

from __future__ import annotations

import os

import pytest

import manta
from manta.cluster_utils import Cluster
from tests.integration.conftest import run_driver

pytestmark = pytest.mark.timeout(120)


def test_a_cluster_is_found_by_auto_until_it_shuts_down() -> None:
    before = os.environ.get("MANTA_CLUSTER_ADDRESS")
    cluster = Cluster()
    try:
        assert cluster.address is None and cluster.gcs_address is None  # no head yet, as in Ray
        cluster.add_node(num_cpus=1, object_store_memory=1e8)  # a float size, as Ray accepts
        address = cluster.address
        assert isinstance(address, str) and address.count(":") == 1
        # What a running cluster's nodes were started with cannot be given when joining it.
        with pytest.raises(ValueError, match="_system_config must not be provided"):
            manta.init(address="auto", _system_config={"object_timeout_milliseconds": 200})
        with pytest.raises(ValueError, match="object_store_memory must not be provided"):
            manta.init(address="auto", object_store_memory=10**8)
        manta.init(address="auto")
        try:
            assert manta.cluster_resources()["object_store_memory"] == 100_000_000
            assert manta.get_runtime_context().get_node_id() == cluster.head_node.node_id
        finally:
            manta.shutdown()
        child = run_driver(
            """
            import manta
            manta.init(address="auto")
            print("CPUS", manta.cluster_resources()["CPU"])
            manta.shutdown()
            """
        )
        assert child.returncode == 0, child.stderr
        assert "CPUS 1.0" in child.stdout  # this cluster's one node, not a new local cluster
        # As in Ray, init() with no address starts a cluster of its own beside it.
        manta.init(num_cpus=2)
        try:
            assert manta.cluster_resources()["CPU"] == 2.0
        finally:
            manta.shutdown()
    finally:
        cluster.shutdown()
    assert os.environ.get("MANTA_CLUSTER_ADDRESS") == before  # not found any more once it is gone
