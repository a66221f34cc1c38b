"""Placement policies, decided on hand-made cluster views."""

from __future__ import annotations

from typing import Any

import pytest

from manta._private.common.ids import NodeID
from manta._private.common.placement import (
    Chosen,
    Infeasible,
    NodeEntry,
    Placer,
    Unschedulable,
    check_strategy,
    labels_match,
    utilization,
)


def node(
    name: str, cpus: float, free: float, labels: dict[str, str] | None = None, **extra: float
) -> NodeEntry:
    node_id = NodeID(name.encode().ljust(28, b"\0"))
    total = {"CPU": cpus, **extra}
    available = {"CPU": free, **extra}
    return NodeEntry(node_id, f"{name}:1", total, available, labels or {})


def chosen(decision: object) -> str:
    assert isinstance(decision, Chosen), decision
    return bytes(decision.node.node_id).rstrip(b"\0").decode()


def test_default_stays_local_below_the_spread_threshold() -> None:
    local, other = node("local", 4, 4), node("other", 4, 4)
    assert chosen(Placer().place([local, other], {"CPU": 1}, "DEFAULT", local.node_id)) == "local"
    assert chosen(Placer().place([local, other], {"CPU": 2}, "DEFAULT", local.node_id)) == "local"


def test_default_goes_to_the_least_utilized_node_above_the_threshold() -> None:
    local, busy, idle = node("local", 4, 1), node("busy", 4, 2), node("idle", 4, 4)
    assert chosen(Placer().place([local, busy, idle], {"CPU": 1}, "DEFAULT", local.node_id)) == "idle"


def test_default_queues_locally_when_nothing_fits_now() -> None:
    local, other = node("local", 2, 0), node("other", 8, 0)
    assert chosen(Placer().place([local, other], {"CPU": 2}, "DEFAULT", local.node_id)) == "local"
    # ... unless it could never fit here.
    assert chosen(Placer().place([local, other], {"CPU": 4}, "DEFAULT", local.node_id)) == "other"


def test_custom_resources_go_where_they_exist() -> None:
    local, gpu = node("local", 2, 2), node("gpu", 2, 2, accel=1)
    assert chosen(Placer().place([local, gpu], {"CPU": 1, "accel": 1}, "DEFAULT", local.node_id)) == "gpu"


def test_nothing_fits_anywhere_is_infeasible_and_dead_nodes_do_not_count() -> None:
    local, dead = node("local", 2, 2), node("dead", 64, 64)
    dead.alive = False
    decision = Placer().place([local, dead], {"CPU": 16}, "DEFAULT", local.node_id)
    assert isinstance(decision, Infeasible) and "16" in decision.reason


def test_spread_rotates_over_the_nodes_that_fit() -> None:
    nodes = [node(n, 2, 2) for n in ("a", "b", "c")]
    placer = Placer()
    picks = [chosen(placer.place(nodes, {"CPU": 1}, "SPREAD", nodes[0].node_id)) for _ in range(6)]
    assert sorted(picks[:3]) == ["a", "b", "c"] and sorted(picks[3:]) == ["a", "b", "c"]
    # A node that is full is skipped while others fit.
    nodes[1].available = {"CPU": 0}
    picks = {chosen(placer.place(nodes, {"CPU": 1}, "SPREAD", None)) for _ in range(4)}
    assert picks == {"a", "c"}


def test_hard_affinity_to_a_dead_or_unfitting_node_fails_and_soft_falls_back() -> None:
    local, target = node("local", 2, 2), node("target", 1, 0)
    hard = {"type": "node_affinity", "node_id": target.node_id.hex(), "soft": False}
    assert (
        chosen(Placer().place([local, target], {"CPU": 1}, hard, local.node_id)) == "target"
    )  # busy: wait there
    assert isinstance(Placer().place([local, target], {"CPU": 2}, hard, local.node_id), Unschedulable)
    target.alive = False
    decision = Placer().place([local, target], {"CPU": 1}, hard, local.node_id)
    assert isinstance(decision, Unschedulable) and "not alive" in decision.reason
    soft = dict(hard, soft=True)
    assert chosen(Placer().place([local, target], {"CPU": 1}, soft, local.node_id)) == "local"


def test_label_selectors() -> None:
    assert labels_match({"zone": "a"}, {"zone": ["in", ["a", "b"]]})
    assert not labels_match({}, {"zone": ["in", ["a"]]})
    assert labels_match({}, {"zone": ["not_in", ["a"]]})
    assert not labels_match({"zone": "a"}, {"zone": ["not_in", ["a"]]})
    assert labels_match({"gpu": "x"}, {"gpu": ["exists", []]})
    assert not labels_match({"gpu": "x"}, {"gpu": ["does_not_exist", []]})
    a, b = node("a", 2, 2, {"zone": "a"}), node("b", 2, 2, {"zone": "b"})
    strategy = {"type": "node_label", "hard": {"zone": ["in", ["b"]]}, "soft": {}}
    assert chosen(Placer().place([a, b], {"CPU": 1}, strategy, a.node_id)) == "b"
    soft = {"type": "node_label", "hard": {}, "soft": {"zone": ["in", ["b"]]}}
    assert chosen(Placer().place([a, b], {"CPU": 1}, soft, a.node_id)) == "b"
    b.available = {"CPU": 0}  # the soft preference yields when its nodes are full
    assert chosen(Placer().place([a, b], {"CPU": 1}, soft, a.node_id)) == "a"
    nowhere = {"type": "node_label", "hard": {"zone": ["in", ["z"]]}, "soft": {}}
    assert isinstance(Placer().place([a, b], {"CPU": 1}, nowhere, a.node_id), Infeasible)


def test_utilization_counts_the_request() -> None:
    assert utilization(node("n", 4, 4), {"CPU": 1}) == 0.25
    assert utilization(node("n", 4, 1), {"CPU": 1}) == 1.0
    assert utilization(node("n", 4, 4), {"other": 1}) == 0.0  # resources it lacks do not count


def test_work_without_gpus_avoids_gpu_nodes_while_others_fit() -> None:
    gpu, plain = node("gpu", 4, 4, GPU=1), node("plain", 1, 1)
    place = Placer().place
    assert chosen(place([gpu, plain], {"CPU": 1}, "DEFAULT", gpu.node_id)) == "plain"
    assert chosen(place([gpu, plain], {"CPU": 1, "GPU": 1}, "DEFAULT", gpu.node_id)) == "gpu"
    full = node("plain", 1, 0)  # nothing without GPUs fits now: the GPU node takes it
    assert chosen(place([gpu, full], {"CPU": 1}, "DEFAULT", gpu.node_id)) == "gpu"
    assert chosen(place([gpu], {"CPU": 1}, "DEFAULT", gpu.node_id)) == "gpu"


@pytest.mark.parametrize(
    "strategy",
    [
        None,
        "DEFAULT",
        "SPREAD",
        {"type": "node_affinity", "node_id": "ab" * 28, "soft": False},
        {"type": "node_label", "hard": {"zone": ["in", ["a"]]}, "soft": {}},
        {
            "type": "placement_group",
            "placement_group_id": "ff" * 18,
            "bundle_index": -1,
            "capture_child_tasks": False,
        },
    ],
)
def test_strategies_as_sent_pass(strategy: Any) -> None:
    check_strategy(strategy)


@pytest.mark.parametrize(
    "strategy",
    [
        "PACK",
        5,
        ["DEFAULT"],
        {"type": "teleport"},
        {"type": "node_affinity", "node_id": 7, "soft": False},
        {"type": "node_affinity", "node_id": "ab", "soft": "no"},
        {"type": "node_label", "hard": {"zone": ["near", ["a"]]}},
        {"type": "node_label", "hard": {"zone": "a"}},
        {"type": "node_label", "hard": [1]},
        {"type": "placement_group", "placement_group_id": None, "bundle_index": "0"},
    ],
)
def test_malformed_strategies_are_refused(strategy: Any) -> None:
    with pytest.raises(ValueError):
        check_strategy(strategy)
