"""A node daemon's view of the cluster: updates from the gcs, and placing lease requests."""

from __future__ import annotations

from manta._private.common.ids import NodeID
from manta._private.common.placement import Chosen, NodeEntry
from manta._private.node.cluster_view import RESERVATION_S, ClusterView
from manta._private.rpc.messages import NodeInfo, NodeState


def state(node_id: NodeID, cpus: float, free: float, alive: bool = True, **labels: str) -> NodeState:
    info = NodeInfo(node_id, "10.0.0.2", 7000, "", "h", "", "", {"CPU": cpus}, labels, False, 1)
    return NodeState(info, alive, {"CPU": free}, "" if alive else "gone", [], [])


def test_updates_add_nodes_mark_deaths_and_ignore_echoes_of_itself() -> None:
    local = NodeEntry(NodeID.from_random(), "", {"CPU": 2}, {"CPU": 2})
    view = ClusterView(local)
    other = NodeID.from_random()
    assert view.update(state(other, 4, 4))
    assert view.nodes[other].address == "10.0.0.2:7000" and view.nodes[other].available == {"CPU": 4}
    assert not view.update(state(local.node_id, 2, 0))  # its own state comes from its scheduler
    assert local.available == {"CPU": 2}
    assert not view.update(state(other, 4, 0, alive=False))
    assert not view.nodes[other].alive and view.nodes[other].available == {}
    assert not view.update(state(NodeID.from_random(), 4, 4, alive=False))  # unknown and dead: ignored


def test_a_request_placed_here_stays_when_this_node_can_ever_run_it() -> None:
    local = NodeEntry(NodeID.from_random(), "", {"CPU": 2}, {"CPU": 0}, {"zone": "a"})
    view = ClusterView(local)
    other = NodeID.from_random()
    view.update(state(other, 4, 4, zone="b"))
    decision = view.place({"CPU": 1}, "DEFAULT", False, {"CPU": 0})
    assert isinstance(decision, Chosen) and decision.node.node_id == other  # fresh: goes where there is room
    kept = view.place({"CPU": 1}, "DEFAULT", True, {"CPU": 0})
    assert isinstance(kept, Chosen) and kept.node is local  # spilled here: waits here
    label_b = {"type": "node_label", "hard": {"zone": ["in", ["b"]]}, "soft": {}}
    moved = view.place({"CPU": 1}, label_b, True, {"CPU": 0})
    assert isinstance(moved, Chosen) and moved.node.node_id == other  # its labels rule this node out
    assert view.place({"CPU": 8}, "DEFAULT", True, {"CPU": 0}).__class__.__name__ == "Infeasible"


def test_reserving_spreads_a_burst_of_spillbacks() -> None:
    local = NodeEntry(NodeID.from_random(), "", {"CPU": 1}, {"CPU": 0})
    view = ClusterView(local)
    first, second = NodeID.from_random(), NodeID.from_random()
    view.update(state(first, 1, 1))
    view.update(state(second, 1, 1))
    chosen = []
    for _ in range(2):
        decision = view.place({"CPU": 1}, "DEFAULT", False, {"CPU": 0})
        assert isinstance(decision, Chosen)
        view.reserve(decision.node, {"CPU": 1}, now=0.0)
        chosen.append(decision.node.node_id)
    assert sorted(chosen) == sorted([first, second])


def test_a_request_sent_for_locality_stays_when_it_fits_now() -> None:
    local = NodeEntry(NodeID.from_random(), "", {"CPU": 4}, {"CPU": 1})
    view = ClusterView(local)
    idle = NodeID.from_random()
    view.update(state(idle, 4, 4))
    spread = view.place({"CPU": 1}, "DEFAULT", False, {"CPU": 1})
    assert isinstance(spread, Chosen) and spread.node.node_id == idle  # the policy prefers the idle node
    kept = view.place({"CPU": 1}, "DEFAULT", False, {"CPU": 1}, locality=True)
    assert isinstance(kept, Chosen) and kept.node is local  # sent here for its arguments, and it fits
    busy = view.place({"CPU": 1}, "DEFAULT", False, {"CPU": 0}, locality=True)
    assert isinstance(busy, Chosen) and busy.node.node_id == idle  # does not fit now: placed as usual


def test_a_reservation_lasts_until_the_nodes_next_state_or_its_time() -> None:
    local = NodeEntry(NodeID.from_random(), "", {"CPU": 1}, {"CPU": 0})
    view = ClusterView(local)
    other = NodeID.from_random()
    view.update(state(other, 2, 2))
    view.reserve(view.nodes[other], {"CPU": 2}, now=0.0)  # a request that never arrives there
    held = view.place({"CPU": 1}, "DEFAULT", False, {"CPU": 0})
    assert not (isinstance(held, Chosen) and held.node.node_id == other)  # it looks full
    assert view.nodes[other].available == {"CPU": 0}
    assert not view.expire(RESERVATION_S - 0.1)
    assert view.expire(RESERVATION_S)  # nothing else changed there: it is free again
    assert view.nodes[other].available == {"CPU": 2}
    decision = view.place({"CPU": 1}, "DEFAULT", False, {"CPU": 0})
    assert isinstance(decision, Chosen) and decision.node.node_id == other
    # A published state replaces what reservations held: they are not given back again.
    view.reserve(view.nodes[other], {"CPU": 1}, now=10.0)
    view.update(state(other, 2, 1))
    assert not view.expire(10.0 + RESERVATION_S)
    assert view.nodes[other].available == {"CPU": 1}
