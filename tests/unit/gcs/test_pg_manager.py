"""Placement groups, decided on hand-made clusters: bundle placement per strategy, and the
group's life (two-phase reservation outcomes, removal, node death, job end)."""

from __future__ import annotations

import pytest

from manta._private.common.ids import JobID, NodeID, PlacementGroupID
from manta._private.common.placement import BundlesWait, NodeEntry, place_bundles
from manta._private.gcs.pg_manager import (
    COMMIT,
    CREATED,
    PENDING,
    REMOVED,
    RESCHEDULING,
    ROLL_BACK,
    NameTaken,
    PgManager,
    Reserve,
)
from manta._private.rpc.messages import PlacementGroupSpec

JOB = JobID.from_int(1)


def node(name: str, cpus: float, free: float | None = None, **labels: str) -> NodeEntry:
    return NodeEntry(
        NodeID(name.encode().ljust(28, b"\0")),
        f"{name}:1",
        {"CPU": cpus},
        {"CPU": cpus if free is None else free},
        labels,
    )


def names(placed: object) -> list[str]:
    assert isinstance(placed, dict), placed
    return [bytes(placed[i].node_id).rstrip(b"\0").decode() for i in sorted(placed)]


def test_each_strategy_places_bundles_as_it_says() -> None:
    nodes = [node("a", 4), node("b", 4), node("c", 4)]
    two = [{"CPU": 1}, {"CPU": 1}]
    assert len(set(names(place_bundles(nodes, two, "STRICT_PACK")))) == 1
    assert len(set(names(place_bundles(nodes, two, "PACK")))) == 1
    assert len(set(names(place_bundles(nodes, [{"CPU": 1}] * 3, "STRICT_SPREAD")))) == 3
    assert len(set(names(place_bundles(nodes, [{"CPU": 1}] * 3, "SPREAD")))) == 3
    # PACK overflows onto a second node when it must; SPREAD doubles up when it must.
    assert len(set(names(place_bundles(nodes, [{"CPU": 3}, {"CPU": 3}], "PACK")))) == 2
    assert len(set(names(place_bundles(nodes, [{"CPU": 1}] * 4, "SPREAD")))) == 3


def test_what_cannot_be_placed_waits_and_says_whether_it_ever_could() -> None:
    nodes = [node("a", 2, free=0), node("b", 2)]
    busy = place_bundles(nodes, [{"CPU": 2}, {"CPU": 2}], "STRICT_SPREAD")
    assert isinstance(busy, BundlesWait) and not busy.infeasible
    never = place_bundles(nodes, [{"CPU": 1}] * 3, "STRICT_SPREAD")
    assert isinstance(never, BundlesWait) and never.infeasible and "3 nodes" in never.reason
    too_big = place_bundles(nodes, [{"CPU": 8}], "PACK")
    assert isinstance(too_big, BundlesWait) and too_big.infeasible and "CPU: 8" in too_big.reason
    one_node = place_bundles(nodes, [{"CPU": 2}, {"CPU": 1}], "STRICT_PACK")
    assert isinstance(one_node, BundlesWait) and one_node.infeasible
    dead = node("c", 64)
    dead.alive = False
    assert isinstance(place_bundles([dead], [{"CPU": 1}], "PACK"), BundlesWait)


def test_bundle_label_selectors_choose_nodes() -> None:
    nodes = [node("a", 2, zone="x"), node("b", 2, zone="y")]
    placed = place_bundles(nodes, [{"CPU": 1}, {"CPU": 1}], "PACK", [{"zone": ["in", ["y"]]}, {}])
    assert names(placed)[0] == "b"


def spec(
    name: str = "", bundles: list[dict[str, float]] | None = None, detached: bool = False
) -> PlacementGroupSpec:
    return PlacementGroupSpec(
        PlacementGroupID.from_random(),
        name,
        "ns",
        JOB,
        bundles or [{"CPU": 1}, {"CPU": 1}],
        "SPREAD",
        detached,
    )


def test_a_group_is_created_only_when_every_bundle_was_reserved() -> None:
    manager = PgManager()
    nodes = [node("a", 2), node("b", 2)]
    s = spec()
    manager.create(s)
    first = manager.schedule(s.pg_id, nodes)
    assert isinstance(first, Reserve) and len(first.per_node) == 2
    assert manager.schedule(s.pg_id, nodes) is None  # one reservation at a time
    assert manager.reserved(s.pg_id, first.attempt, ok=False) == ROLL_BACK  # a node said no
    assert manager.info(s.pg_id).state == PENDING and manager.info(s.pg_id).nodes == ["", ""]
    second = manager.schedule(s.pg_id, nodes)
    assert isinstance(second, Reserve) and second.attempt > first.attempt
    # A stale answer changes nothing (its own reservation is rolled back).
    assert manager.reserved(s.pg_id, first.attempt, ok=True) == ROLL_BACK
    assert manager.info(s.pg_id).state == PENDING
    assert manager.reserved(s.pg_id, second.attempt, ok=True) == COMMIT
    assert manager.info(s.pg_id).state == CREATED


def test_a_creation_sent_again_is_the_same_group_and_reserves_nothing_more() -> None:
    manager = PgManager()
    nodes = [node("a", 2), node("b", 2)]
    s = spec(name="again")
    record = manager.create(s)
    reserve = manager.schedule(s.pg_id, nodes)
    assert isinstance(reserve, Reserve)
    assert manager.create(s) is record  # its creator lost the answer to a gcs restart
    assert manager.schedule(s.pg_id, nodes) is None  # still the one reservation
    other = PlacementGroupSpec(s.pg_id, "other", "ns", JOB, [{"CPU": 1}], "PACK", False)
    with pytest.raises(ValueError, match="already exists"):
        manager.create(other)


def test_a_node_registering_is_told_again_of_the_created_bundles_it_holds() -> None:
    # The commit is one message nobody answers: a gcs killed right after sending it may not
    # have delivered it, and its successor finds the group created.
    manager = PgManager()
    a, b = node("a", 2), node("b", 2)
    s = spec()
    manager.create(s)
    assert manager.committed_on(a.node_id) == []  # nothing created yet
    reserve = manager.schedule(s.pg_id, [a, b])
    assert isinstance(reserve, Reserve)
    assert manager.committed_on(a.node_id) == []  # reserving: not committed anywhere
    manager.reserved(s.pg_id, reserve.attempt, ok=True)
    on_a = [int(bundle[0]) for bundle in reserve.per_node[a.node_id]]  # type: ignore[call-overload]
    assert manager.committed_on(a.node_id) == [(s.pg_id, on_a, reserve.attempt)]
    assert manager.committed_on(node("c", 2).node_id) == []
    manager.remove(s.pg_id)
    assert manager.committed_on(a.node_id) == []


def test_removal_node_death_and_job_end() -> None:
    manager = PgManager()
    a, b = node("a", 2), node("b", 2)
    s = spec(name="g")
    manager.create(s)
    reserve = manager.schedule(s.pg_id, [a, b])
    assert isinstance(reserve, Reserve)
    manager.reserved(s.pg_id, reserve.attempt, ok=True)
    with pytest.raises(NameTaken):
        manager.create(spec(name="g"))
    # A node with one of its bundles dies: only that bundle is placed again, the other stays.
    placed_before = manager.info(s.pg_id).nodes
    assert manager.node_died(a.node_id) == [s.pg_id]
    assert manager.info(s.pg_id).state == RESCHEDULING and s.pg_id in manager.waiting()
    kept = [n for n in manager.info(s.pg_id).nodes if n]
    assert kept == [n for n in placed_before if n != a.node_id.hex()]
    again = manager.schedule(s.pg_id, [b, node("c", 2)])
    assert isinstance(again, Reserve) and sum(len(v) for v in again.per_node.values()) == 1
    detached = spec(detached=True)
    manager.create(detached)
    assert manager.job_finished(JOB) == [s.pg_id]  # the detached one outlives its job
    holders = manager.remove(s.pg_id)  # the kept bundle's node, and the new one's
    assert b.node_id in holders
    assert manager.info(s.pg_id).state == REMOVED and manager.lookup("g", "ns") is None
    manager.create(spec(name="g"))  # the name is free again


def test_groups_survive_storage_and_half_reserved_ones_start_over() -> None:
    from manta._private.gcs.pg_manager import decode_group, encode_group

    before = PgManager()
    a, b = node("a", 2), node("b", 2)
    done, half = spec(name="done"), spec(name="half")
    for s in (done, half):
        before.create(s)
    first = before.schedule(done.pg_id, [a, b])
    assert isinstance(first, Reserve)
    before.reserved(done.pg_id, first.attempt, ok=True)
    assert isinstance(before.schedule(half.pg_id, [a, b]), Reserve)  # caught mid-reservation

    after = PgManager()
    release = after.restore([decode_group(encode_group(r)) for r in before.groups.values()])
    release = [(pg_id, holders) for pg_id, holders, _attempt in release]
    assert after.info(done.pg_id).state == CREATED and after.lookup("done", "ns") == done.pg_id
    assert after.info(done.pg_id).nodes == before.info(done.pg_id).nodes
    [(pg_id, holders)] = release
    assert pg_id == half.pg_id and set(holders) == {a.node_id, b.node_id}
    assert after.info(half.pg_id).state == PENDING and half.pg_id in after.waiting()


def test_the_gcs_refuses_malformed_groups_from_a_peer() -> None:
    import asyncio

    from manta._private.gcs.pg_shell import PlacementGroupDirector
    from manta._private.gcs.storage import MemoryStorage
    from manta._private.rpc.messages import CreatePlacementGroup

    director = PlacementGroupDirector(
        lambda n: None, lambda: [], lambda p: None, lambda *a: None, MemoryStorage()
    )

    def create(**changes: object) -> None:
        base = spec()
        values = {
            n: getattr(base, n)
            for n in ("pg_id", "name", "namespace", "job_id", "bundles", "strategy", "detached")
        }
        values.update(changes)
        director._h_create(None, CreatePlacementGroup(PlacementGroupSpec(**values)))  # type: ignore[arg-type]

    async def main() -> None:
        for bad, message in (
            ({"strategy": "TIGHT"}, "unknown placement group strategy"),
            ({"bundles": []}, "at least one bundle"),
            ({"bundles": [{"CPU": -1.0}]}, "must be >= 0"),
            ({"bundles": [{"CPU": 0.0}]}, "asks for nothing"),
            ({"label_selectors": [{}, {}, {}]}, "one per bundle"),
            ({"label_selectors": [{"zone": "x"}, {"zone": ["in", ["a"]]}]}, "operator, values"),
        ):
            with pytest.raises(ValueError, match=message):
                create(**bad)
        assert director.manager.groups == {}

    asyncio.run(main())


def test_strict_spread_matches_bundles_to_nodes_instead_of_greedily() -> None:
    # The big bundle fits both nodes, the x bundle only the big node: greedy placement of
    # the big bundle first would take the big node and leave x nowhere.
    small = node("small", 2)
    big = NodeEntry(NodeID(b"big".ljust(28, b"\0")), "big:1", {"CPU": 4, "x": 1}, {"CPU": 4, "x": 1})
    placed = place_bundles([small, big], [{"CPU": 2}, {"x": 1}], "STRICT_SPREAD")
    assert names(placed) == ["small", "big"]


def test_bundles_placed_again_respect_the_kept_ones() -> None:
    a, b, c = node("a", 2), node("b", 2), node("c", 2)
    again = place_bundles([a, b, c], [{"CPU": 1}] * 2, "STRICT_SPREAD", kept={0: a.node_id})
    assert isinstance(again, dict) and list(again) == [1] and again[1] is not a
    packed = place_bundles([a, b, c], [{"CPU": 1}] * 2, "STRICT_PACK", kept={0: b.node_id})
    assert isinstance(packed, dict) and packed == {1: b}
    b.available = {"CPU": 0}
    assert isinstance(
        place_bundles([a, b, c], [{"CPU": 1}] * 2, "STRICT_PACK", kept={0: b.node_id}), BundlesWait
    )
