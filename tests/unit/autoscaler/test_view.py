"""The cluster as the policy sees it, from what the gcs reports; idle times; launch backoff."""

from __future__ import annotations

from typing import Any

from manta._private.autoscaler.backoff import LaunchBackoff
from manta._private.autoscaler.config import parse
from manta._private.autoscaler.provider import LAUNCH_LABEL, TYPE_LABEL, Launched
from manta._private.autoscaler.view import IdleTimes, cluster_view, in_use
from manta._private.common.ids import NodeID, PlacementGroupID
from manta._private.rpc import messages as m

CONFIG = parse({"available_node_types": {"w": {"resources": {"CPU": 1}, "max_workers": 3}}})


def state(
    labels: dict[str, str], available: dict[str, float], alive: bool = True, **more: Any
) -> m.NodeState:
    total = {"CPU": 1.0, "object_store_memory": 100.0, "node:127.0.0.1": 1.0}
    info = m.NodeInfo(NodeID.from_random(), "127.0.0.1", 1, "", "h", "", "", total, labels, False, 1)
    return m.NodeState(
        info,
        alive,
        available,
        "",
        more.get("pending", []),
        more.get("infeasible", []),
        None,
        more.get("pending_labels"),
        more.get("infeasible_labels"),
    )


FREE = {"CPU": 1.0, "object_store_memory": 100.0, "node:127.0.0.1": 1.0}


def test_nodes_it_launched_are_known_by_their_launch_id_and_the_rest_are_not_its() -> None:
    ours = state({LAUNCH_LABEL: "w-1", TYPE_LABEL: "w"}, FREE)
    in_group = {"CPU_group_0_" + "ab" * 9: 1.0}  # a task waiting for its group's bundle
    head = state(
        {},
        FREE,
        pending=[{"CPU": 2.0}, in_group],
        infeasible=[{"GPU": 1.0}],
        pending_labels=[{}, {}],
        infeasible_labels=[{"zone": ["in", ["b"]]}],
    )
    dead = state({LAUNCH_LABEL: "w-9"}, FREE, alive=False)
    launched = [Launched("w-1", "w", 0.0), Launched("w-2", "w", 5.0)]
    view = cluster_view(
        CONFIG,
        [ours, head, dead],
        set(),
        [[{"CPU": 1.0}, {"zone": ["in", ["a"]]}]],
        [],
        (),
        launched,
        IdleTimes(),
        now=10.0,
    )
    assert [(n.node_id, n.node_type) for n in view.nodes] == [("w-1", "w"), (head.info.node_id.hex(), "")]
    assert [(x.node_id, x.launched_at) for x in view.launching] == [("w-2", 5.0)]
    assert [(s.resources, s.selector) for s in view.demand] == [
        ({"CPU": 2.0}, {}),
        ({"GPU": 1.0}, {"zone": ["in", ["b"]]}),
        ({"CPU": 1.0}, {"zone": ["in", ["a"]]}),  # an actor the gcs cannot place yet
    ]
    older = state({}, FREE, pending=[{"CPU": 3.0}])  # a node that sends no selectors
    assert cluster_view(CONFIG, [older], set(), [], [], (), [], IdleTimes(), 0.0).demand[0].selector == {}


def test_a_node_is_busy_while_anything_holds_its_resources_objects_or_an_actor() -> None:
    assert not in_use({"CPU": 1.0, "node:x": 1.0}, {"CPU": 1.0, "node:x": 1.0})
    assert in_use({"CPU": 1.0}, {"CPU": 0.5})
    assert in_use({"object_store_memory": 100.0}, {"object_store_memory": 60.0})  # objects stored there
    idle = IdleTimes()
    node = state({LAUNCH_LABEL: "w-1"}, FREE)
    launched = [Launched("w-1", "w", 0.0)]
    first = cluster_view(CONFIG, [node], set(), [], [], (), launched, idle, now=100.0)
    later = cluster_view(CONFIG, [node], set(), [], [], (), launched, idle, now=200.0)
    assert first.nodes[0].idle_since == later.nodes[0].idle_since == 100.0
    with_actor = cluster_view(
        CONFIG, [node], {node.info.node_id.hex()}, [], [], (), launched, idle, now=300.0
    )
    assert with_actor.nodes[0].idle_since is None
    again = cluster_view(CONFIG, [node], set(), [], [], (), launched, idle, now=400.0)
    assert again.nodes[0].idle_since == 400.0  # idle from zero again


def test_waiting_placement_groups_ask_for_their_unplaced_bundles() -> None:
    def group(state: str, nodes: list[str]) -> m.PlacementGroupInfo:
        bundles = [{"CPU": 1.0}, {"CPU": 2.0}]
        return m.PlacementGroupInfo(
            PlacementGroupID.from_random(), "", "", state, bundles, "STRICT_SPREAD", nodes, False, ""
        )

    groups = [group("PENDING", ["", ""]), group("RESCHEDULING", ["ab", ""]), group("CREATED", ["ab", "cd"])]
    view = cluster_view(CONFIG, [], set(), [], groups, (), [], IdleTimes(), now=0.0)
    assert [g.bundles for g in view.groups] == [({"CPU": 1.0}, {"CPU": 2.0}), ({"CPU": 2.0},)]
    assert [g.avoid for g in view.groups] == [(), ("ab",)]  # STRICT_SPREAD: not on the node it is on


def test_launches_that_keep_failing_wait_longer_each_time_up_to_a_cap() -> None:
    backoff = LaunchBackoff()
    assert backoff.allowed("w", now=0)
    waits = [backoff.failed("w", now=0) for _ in range(10)]
    assert waits[:4] == [5, 10, 20, 40] and waits[-1] == 300
    assert not backoff.allowed("w", now=299) and backoff.allowed("w", now=300)
    assert backoff.allowed("other", now=0)
    backoff.succeeded("w")
    assert backoff.allowed("w", now=0)
