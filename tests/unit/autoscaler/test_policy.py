"""The autoscaler's decisions, with a fake clock (``now``) and no cluster."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from manta._private.autoscaler.config import parse
from manta._private.autoscaler.policy import (
    MIN_PENDING_LAUNCHES,
    ClusterView,
    GroupDemand,
    Launching,
    Node,
    Plan,
    Shape,
    plan,
)


def decide(cfg: Any, view: ClusterView, now: float) -> Plan:
    return plan(cfg, view, now, join_timeout_s=300)


HEAD = Node("head", "", {"CPU": 2}, {"CPU": 0})  # busy, and not the autoscaler's to end


def config(types: dict[str, Any] | None = None, **top: Any) -> Any:
    return parse(
        {
            "max_workers": 20,
            "idle_timeout_minutes": 1,
            "available_node_types": types
            or {
                "cpu-4": {"resources": {"CPU": 4}, "max_workers": 5},
                "cpu-8": {"resources": {"CPU": 8}, "max_workers": 2},
                "gpu": {"resources": {"CPU": 4, "GPU": 1}, "labels": {"accel": "a100"}, "max_workers": 2},
            },
            **top,
        }
    )


def cpus(n: int, each: float = 1.0) -> tuple[Shape, ...]:
    return tuple(Shape({"CPU": each}) for _ in range(n))


def worker(
    node_id: str, node_type: str = "cpu-4", free: float = 4.0, idle_since: float | None = None
) -> Node:
    return Node(node_id, node_type, {"CPU": 4}, {"CPU": free}, idle_since=idle_since)


def test_pending_demand_launches_the_nodes_it_needs_and_says_why() -> None:
    small = config({"cpu-4": {"resources": {"CPU": 4}, "max_workers": 5}})
    decided = decide(small, ClusterView(nodes=(HEAD,), demand=cpus(6)), now=0)
    assert decided.launch == {"cpu-4": 2}
    assert decided.reasons == ["launching 2 x cpu-4: 6 CPUs of pending demand"]
    assert not decided.terminate and not decided.unplaceable


def test_demand_that_fits_on_free_room_or_launching_nodes_launches_nothing() -> None:
    assert decide(config(), ClusterView(nodes=(HEAD, worker("w1")), demand=cpus(4)), now=0).launch == {}
    launching = (Launching("p1", "cpu-4", launched_at=0),)
    assert (
        decide(config(), ClusterView(nodes=(HEAD,), launching=launching, demand=cpus(4)), now=10).launch == {}
    )


def test_the_type_that_takes_most_of_the_demand_is_chosen_then_the_smaller() -> None:
    assert decide(config(), ClusterView(demand=cpus(8)), now=0).launch == {"cpu-8": 1}
    assert decide(config(), ClusterView(demand=cpus(1)), now=0).launch == {"cpu-4": 1}
    assert decide(config(), ClusterView(demand=(Shape({"GPU": 1}),)), now=0).launch == {"gpu": 1}


def test_label_selectors_pick_the_node_types_whose_labels_match() -> None:
    wants_a100 = Shape({"CPU": 1}, {"accel": ["in", ["a100"]]})
    assert decide(config(), ClusterView(demand=(wants_a100,)), now=0).launch == {"gpu": 1}
    wants_h100 = Shape({"CPU": 1}, {"accel": ["in", ["h100"]]})
    decided = decide(config(), ClusterView(demand=(wants_h100,)), now=0)
    assert decided.launch == {}
    assert decided.unplaceable == [
        "cannot place {CPU: 1} on labels {'accel': ['in', ['h100']]}: no node type has it"
    ]


def test_demand_no_node_type_can_hold_is_reported_not_launched_for() -> None:
    decided = decide(config(), ClusterView(demand=(Shape({"GPU": 8}), *cpus(1))), now=0)
    assert decided.launch == {"cpu-4": 1}
    assert decided.unplaceable == ["cannot place {GPU: 8}: no node type has it"]


def test_max_workers_per_type_and_for_the_cluster_are_never_passed() -> None:
    decided = decide(config(), ClusterView(demand=(*cpus(4, each=8), Shape({"GPU": 1}))), now=0)
    assert decided.launch == {"cpu-8": 2, "gpu": 1}
    assert any("cpu-8 is at its max_workers (2)" in r for r in decided.reasons)
    capped = decide(config(max_workers=3), ClusterView(demand=cpus(40)), now=0)
    assert sum(capped.launch.values()) == 3
    assert any("the cluster is at max_workers (3)" in r for r in capped.reasons)


def test_min_workers_are_kept_without_demand() -> None:
    types = {"cpu-4": {"resources": {"CPU": 4}, "min_workers": 2, "max_workers": 4}}
    decided = decide(config(types), ClusterView(nodes=(HEAD,)), now=0)
    assert decided.launch == {"cpu-4": 2}
    assert decided.reasons == ["launching 2 x cpu-4: min_workers is 2"]
    # Idle for long, but the type would go below its min_workers.
    nodes = (HEAD, worker("w1", idle_since=0), worker("w2", idle_since=0), worker("w3", idle_since=0))
    assert decide(config(types), ClusterView(nodes=nodes), now=3600).terminate.keys() == {"w1"}


def test_upscaling_speed_caps_the_launches_pending_at_once() -> None:
    many = config(
        {"cpu-4": {"resources": {"CPU": 4}, "max_workers": 100}}, upscaling_speed=1.0, max_workers=200
    )
    first = decide(many, ClusterView(nodes=(HEAD,), demand=cpus(80)), now=0)
    assert first.launch == {"cpu-4": MIN_PENDING_LAUNCHES}
    assert any("15 more launch(es) wait" in r for r in first.reasons)
    # Ten nodes joined (the head too) and two launching: at speed 1, 10 may be pending; 2 are.
    nodes = (HEAD, *(worker(f"w{i}", free=0) for i in range(9)))
    launching = tuple(Launching(f"p{i}", "cpu-4", 0) for i in range(2))
    later = decide(many, ClusterView(nodes=nodes, launching=launching, demand=cpus(80)), now=1)
    assert later.launch == {"cpu-4": 8}  # launches not joined yet do not raise the cap
    faster = config(
        {"cpu-4": {"resources": {"CPU": 4}, "max_workers": 100}}, upscaling_speed=2.0, max_workers=200
    )
    assert decide(faster, ClusterView(nodes=nodes, launching=launching, demand=cpus(80)), now=1).launch == {
        "cpu-4": 18
    }  # all it needs


def test_idle_workers_go_after_the_timeout_and_busy_ones_stay() -> None:
    nodes = (
        HEAD,
        worker("idle-long", idle_since=0),
        worker("idle-short", idle_since=50),
        worker("busy", free=3),  # idle_since None: something runs there, or it holds objects
    )
    decided = decide(config(), ClusterView(nodes=nodes), now=100)
    assert decided.terminate == {"idle-long": "idle for 100 s (idle timeout 60 s)"}


def test_an_idle_node_that_pending_demand_fits_on_is_kept() -> None:
    nodes = (HEAD, worker("idle", idle_since=0))
    decided = decide(config(), ClusterView(nodes=nodes, demand=cpus(2)), now=1000)
    assert decided.terminate == {} and decided.launch == {}


def test_the_head_and_nodes_started_by_hand_are_never_terminated() -> None:
    idle_head = Node("head", "", {"CPU": 2}, {"CPU": 2}, idle_since=0)
    by_hand = Node("manual", "", {"CPU": 4}, {"CPU": 4}, idle_since=0)
    assert decide(config(), ClusterView(nodes=(idle_head, by_hand)), now=10_000).terminate == {}


def test_a_node_that_never_joins_is_terminated_and_its_demand_launched_again() -> None:
    launching = (Launching("stuck", "cpu-4", launched_at=0),)
    decided = decide(config(), ClusterView(nodes=(HEAD,), launching=launching, demand=cpus(2)), now=400)
    assert decided.terminate == {"stuck": "launched as cpu-4 400 s ago and never joined (join timeout 300 s)"}
    assert decided.launch == {"cpu-4": 1}


def test_placement_groups_get_all_their_nodes_or_none() -> None:
    spread = GroupDemand("g1", ({"CPU": 1},) * 3, "STRICT_SPREAD")
    decided = decide(config(), ClusterView(nodes=(HEAD, worker("w1")), groups=(spread,)), now=0)
    assert decided.launch == {"cpu-4": 2}  # one bundle on w1, one node for each other bundle
    assert decided.reasons == ["launching 2 x cpu-4: 2 CPUs of placement group g1"]
    packed = GroupDemand("g2", ({"CPU": 3}, {"CPU": 3}), "STRICT_PACK")
    assert decide(config(), ClusterView(groups=(packed,)), now=0).launch == {"cpu-8": 1}
    too_wide = GroupDemand("g3", ({"CPU": 1},) * 4, "STRICT_SPREAD")
    small = config({"cpu-4": {"resources": {"CPU": 4}, "max_workers": 3}})
    none = decide(small, ClusterView(groups=(too_wide,)), now=0)
    assert none.launch == {}
    assert none.reasons == ["placement group g3 waits: cpu-4 is at its max_workers (3)"]
    best_effort = GroupDemand("g4", ({"CPU": 2},) * 4, "PACK")
    assert decide(small, ClusterView(groups=(best_effort,)), now=0).launch == {"cpu-4": 2}


def test_requested_resources_are_a_floor_on_the_clusters_total() -> None:
    busy = worker("w1", free=0)  # its total (and the head's) still count towards the request
    decided = decide(config(), ClusterView(nodes=(HEAD, busy), requested=({"CPU": 1},) * 8), now=0)
    assert decided.launch == {"cpu-4": 1}
    assert decided.reasons == ["launching 1 x cpu-4: 2 CPUs of requested resources"]
    idle = worker("w2", idle_since=0)  # needed for the request: kept
    assert (
        decide(config(), ClusterView(nodes=(HEAD, idle), requested=({"CPU": 4},)), now=10_000).terminate == {}
    )


_shapes = st.lists(
    st.builds(
        Shape,
        st.dictionaries(
            st.sampled_from(["CPU", "GPU", "mem"]), st.sampled_from([0.5, 1.0, 2.0, 4.0, 16.0]), min_size=1
        ),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(
    demand=_shapes,
    joined=st.lists(
        st.tuples(st.sampled_from(["cpu-4", "cpu-8", "gpu"]), st.booleans(), st.integers(0, 200)), max_size=8
    ),
    launching=st.lists(
        st.tuples(st.sampled_from(["cpu-4", "cpu-8", "gpu"]), st.integers(0, 500)), max_size=4
    ),
    limit=st.integers(0, 8),
    speed=st.sampled_from([0.5, 1.0, 3.0]),
    mins=st.integers(0, 2),
)
def test_limits_hold_whatever_the_cluster_and_its_demand(
    demand: list[Shape], joined: list[Any], launching: list[Any], limit: int, speed: float, mins: int
) -> None:
    types = {
        "cpu-4": {"resources": {"CPU": 4}, "min_workers": mins, "max_workers": max(mins, 3)},
        "cpu-8": {"resources": {"CPU": 8, "mem": 16}, "max_workers": 2},
        "gpu": {"resources": {"CPU": 4, "GPU": 1}, "max_workers": 2},
    }
    cfg = config(types, max_workers=limit, upscaling_speed=speed)
    nodes = [HEAD] + [
        Node(
            f"w{i}",
            t,
            dict(cfg.node_types[t].resources),
            {} if busy else dict(cfg.node_types[t].resources),
            idle_since=None if busy else float(since),
        )
        for i, (t, busy, since) in enumerate(joined)
    ]
    pending = [Launching(f"p{i}", t, float(at)) for i, (t, at) in enumerate(launching)]
    now = 600.0
    decided = decide(
        cfg, ClusterView(nodes=tuple(nodes), launching=tuple(pending), demand=tuple(demand)), now=now
    )
    alive = [n.node_type for n in nodes[1:]] + [
        p.node_type for p in pending if p.node_id not in decided.terminate
    ]
    ended = {n.node_type for n in nodes if n.node_id in decided.terminate}
    assert "head" not in decided.terminate
    for name, node_type in cfg.node_types.items():
        before = alive.count(name)
        after = (
            before
            + decided.launch.get(name, 0)
            - sum(1 for n in nodes if n.node_id in decided.terminate and n.node_type == name)
        )
        if decided.launch.get(name):
            assert after <= node_type.max_workers
        if name in ended:
            assert after >= node_type.min_workers
    if decided.launch:
        assert len(alive) + sum(decided.launch.values()) <= max(limit, len(alive))
    still_pending = sum(1 for p in pending if p.node_id not in decided.terminate)
    allowed = max(MIN_PENDING_LAUNCHES, int(speed * len(nodes)))  # joined nodes only
    assert sum(decided.launch.values()) <= max(allowed - still_pending, 0)
    for line in decided.unplaceable:  # said only of demand no type could ever hold
        assert line.endswith("no node type has it")


def test_requested_resources_are_launched_at_once_whatever_upscaling_speed_says() -> None:
    many = config(
        {"cpu-4": {"resources": {"CPU": 4}, "max_workers": 100}}, upscaling_speed=0.5, max_workers=200
    )
    decided = decide(many, ClusterView(nodes=(HEAD,), requested=({"CPU": 4},) * 12), now=0)
    assert decided.launch == {"cpu-4": 12}


def test_gpu_nodes_are_not_launched_for_demand_that_needs_no_gpu_unless_nothing_else_fits() -> None:
    types = {
        "cpu-4": {"resources": {"CPU": 4}, "max_workers": 2},
        "gpu-8": {"resources": {"CPU": 8, "GPU": 1, "memory": 64e9}, "max_workers": 4},
    }
    assert decide(config(types), ClusterView(demand=cpus(8)), now=0).launch == {"cpu-4": 2}
    # cpu-4 is at its max: the GPU type takes what is left rather than leave it waiting.
    assert decide(config(types), ClusterView(demand=cpus(12)), now=0).launch == {"cpu-4": 2, "gpu-8": 1}
    assert decide(config(types), ClusterView(demand=(Shape({"CPU": 1, "GPU": 1}),)), now=0).launch == {
        "gpu-8": 1
    }


def test_a_strict_spread_group_being_rescheduled_avoids_the_nodes_it_is_on() -> None:
    group = GroupDemand("g5", ({"CPU": 1},), "STRICT_SPREAD", avoid=("w1",))
    decided = decide(config(), ClusterView(nodes=(HEAD, worker("w1")), groups=(group,)), now=0)
    assert decided.launch == {"cpu-4": 1}  # w1 has room, but holds one of its bundles
