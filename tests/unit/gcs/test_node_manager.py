"""Cluster membership: heartbeats and the node timeout, driven by a fake clock."""

from __future__ import annotations

from manta._private.common.clock import FakeClock
from manta._private.common.ids import NodeID
from manta._private.gcs.node_manager import NodeManager
from manta._private.rpc.messages import NodeInfo


def info(cpus: float = 4) -> NodeInfo:
    return NodeInfo(
        NodeID.from_random(), "127.0.0.1", 1, "", "host", "/store", "/session", {"CPU": cpus}, {}, False, 1
    )


def test_register_records_a_live_node() -> None:
    clock = FakeClock()
    nodes = NodeManager(clock, timeout_s=10)
    node = info()
    record = nodes.register(node)
    assert record.alive and record.info is node
    assert record.available == {"CPU": 4}
    assert record.available is not node.resources
    assert record.last_seen == clock.now
    assert nodes.alive() == [record]


def test_silent_node_is_declared_dead_after_the_timeout() -> None:
    clock = FakeClock()
    nodes = NodeManager(clock, timeout_s=10)
    record = nodes.register(info())
    clock.advance(10)
    assert nodes.check() == []  # exactly at the deadline: still alive
    clock.advance(0.5)
    assert nodes.check() == [record]
    assert not record.alive
    assert record.death_reason == "missed heartbeats for 10.5 s"
    assert record.available == {}
    assert nodes.alive() == []
    clock.advance(100)
    assert nodes.check() == []  # dead once


def test_heartbeats_keep_a_node_alive() -> None:
    clock = FakeClock()
    nodes = NodeManager(clock, timeout_s=10)
    node = info()
    record = nodes.register(node)
    for _ in range(5):
        clock.advance(8)
        assert nodes.heartbeat(node.node_id, {"CPU": 1.0}, [{"CPU": 2.0}], [{"GPU": 1.0}])
        assert nodes.check() == []
    assert record.available == {"CPU": 1.0}
    assert record.pending == [{"CPU": 2.0}]
    assert record.infeasible == [{"GPU": 1.0}]
    assert record.last_seen == clock.now


def test_only_silent_nodes_die() -> None:
    clock = FakeClock()
    nodes = NodeManager(clock, timeout_s=5)
    quiet, chatty = info(), info()
    nodes.register(quiet)
    nodes.register(chatty)
    clock.advance(4)
    nodes.heartbeat(chatty.node_id, {}, [], [])
    clock.advance(2)
    assert [r.info for r in nodes.check()] == [quiet]
    assert [r.info for r in nodes.alive()] == [chatty]


def test_heartbeat_from_unknown_or_dead_node_is_refused() -> None:
    clock = FakeClock()
    nodes = NodeManager(clock, timeout_s=10)
    assert not nodes.heartbeat(NodeID.from_random(), {}, [], [])
    node = info()
    nodes.register(node)
    assert nodes.mark_dead(node.node_id, "unregistered") is not None
    assert not nodes.heartbeat(node.node_id, {"CPU": 4}, [], [])
    assert nodes.nodes[node.node_id].available == {}
    assert nodes.mark_dead(node.node_id, "again") is None
    assert nodes.mark_dead(NodeID.from_random(), "unknown") is None
    assert nodes.nodes[node.node_id].death_reason == "unregistered"


def test_a_dead_node_may_register_again() -> None:
    clock = FakeClock()
    nodes = NodeManager(clock, timeout_s=1)
    node = info()
    nodes.register(node)
    clock.advance(2)
    nodes.check()
    record = nodes.register(node)
    assert record.alive
    assert nodes.heartbeat(node.node_id, {}, [], [])
