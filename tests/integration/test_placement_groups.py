"""Placement groups on a three-node cluster: every strategy, tasks and actors inside
bundles, removal, pending groups picked up by a node that joins, a node dying under a
group, and the inputs that are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import manta
from manta.cluster_utils import Cluster
from manta.exceptions import ActorDiedError, GetTimeoutError, TaskPlacementGroupRemoved
from manta.util.placement_group import (
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)
from manta.util.scheduling_strategies import PlacementGroupSchedulingStrategy
from tests.polling import wait_until

pytestmark = pytest.mark.timeout(120)

STORE = 128 * 1024 * 1024
FAST = {"node_timeout_s": 1.0, "heartbeat_interval_s": 0.2}


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    try:
        for _ in range(3):
            c.add_node(num_cpus=2, object_store_memory=STORE, _system_config=FAST)
        c.connect()
        yield c
    finally:
        c.shutdown()


@pytest.fixture(autouse=True)
def all_free(cluster):
    """Each test starts, and must end, with every CPU free (groups removed)."""
    yield
    wait_until(lambda: manta.available_resources().get("CPU") == 6, what="every CPU to be free again")


def node_id() -> str:
    return manta.get_runtime_context().get_node_id()


@manta.remote(num_cpus=1)
def where() -> str:
    return node_id()


def in_bundle(pg, index: int = -1) -> PlacementGroupSchedulingStrategy:
    return PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=index)


def nodes_of(pg) -> list[str]:
    table = placement_group_table(pg)
    return [table["bundles_to_node_id"][i] for i in range(len(table["bundles"]))]


@pytest.mark.parametrize(
    ("strategy", "bundles", "distinct"),
    [
        ("STRICT_PACK", [{"CPU": 1}, {"CPU": 1}], 1),
        ("PACK", [{"CPU": 1}, {"CPU": 1}], 1),
        ("STRICT_SPREAD", [{"CPU": 1}] * 3, 3),
        ("SPREAD", [{"CPU": 1}] * 3, 3),
    ],
)
def test_strategies_place_bundles_as_defined(cluster, strategy, bundles, distinct) -> None:
    pg = placement_group(bundles, strategy=strategy)
    assert manta.get(pg.ready(), timeout=30) == pg
    assert pg.wait(5) and placement_group_table(pg)["state"] == "CREATED"
    placed = nodes_of(pg)
    assert len(set(placed)) == distinct
    # A task in bundle i runs on bundle i's node.
    assert [
        manta.get(where.options(scheduling_strategy=in_bundle(pg, i)).remote()) for i in range(len(bundles))
    ] == placed
    assert manta.available_resources().get("CPU") == 6 - len(bundles)
    remove_placement_group(pg)
    assert placement_group_table(pg)["state"] == "REMOVED"


def test_pack_spills_to_a_second_node_only_when_it_must(cluster) -> None:
    pg = placement_group([{"CPU": 2}, {"CPU": 1}], strategy="PACK")
    assert pg.wait(30)
    assert len(set(nodes_of(pg))) == 2  # 3 CPUs cannot fit one 2-CPU node
    with pytest.warns(UserWarning, match="STRICT_PACK needs one node that holds every bundle"):
        strict = placement_group([{"CPU": 2}, {"CPU": 1}], strategy="STRICT_PACK")
    assert not strict.wait(1)  # never on one node: pending, not half-placed
    assert placement_group_table(strict)["state"] == "PENDING"
    assert manta.available_resources().get("CPU") == 3  # only the first group holds CPUs
    remove_placement_group(pg)
    remove_placement_group(strict)


def test_work_in_a_bundle_uses_only_that_bundles_resources(cluster) -> None:
    pg = placement_group([{"CPU": 1}], strategy="STRICT_PACK")
    assert pg.wait(30)
    with pytest.raises(ValueError, match="cannot fit into any bundle"):
        where.options(num_cpus=2, scheduling_strategy=in_bundle(pg, 0)).remote()  # the node has 2
    free = where.options(num_cpus=0, scheduling_strategy=in_bundle(pg)).remote()
    assert manta.get(free, timeout=30) == nodes_of(pg)[0]  # no resources: still inside it
    remove_placement_group(pg)


def test_removing_a_group_kills_its_actors_and_frees_its_resources(cluster) -> None:
    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_SPREAD", name="gang")
    assert pg.wait(30)
    assert get_placement_group("gang") == pg

    @manta.remote(num_cpus=1, max_restarts=3)
    class Member:
        def where(self) -> str:
            return node_id()

    members = [Member.options(scheduling_strategy=in_bundle(pg, i)).remote() for i in range(2)]
    assert manta.get([x.where.remote() for x in members]) == nodes_of(pg)
    assert manta.available_resources().get("CPU") == 4
    remove_placement_group(pg)

    def death_of(member) -> str:
        try:
            manta.get(member.where.remote(), timeout=10)
        except ActorDiedError as e:
            return str(e)
        return ""  # a call that got in before the kill

    for member in members:
        assert "placement group was removed" in wait_until(
            lambda m=member: death_of(m), what="the member to die"
        )
    wait_until(lambda: manta.available_resources().get("CPU") == 6, what="the group's CPUs back")
    with pytest.raises(ValueError, match="Failed to look up"):
        get_placement_group("gang")
    with pytest.raises(ValueError, match="was removed"):
        where.options(scheduling_strategy=in_bundle(pg, 0)).remote()


def test_a_group_too_big_for_the_cluster_waits_warns_and_is_placed_when_a_node_joins(cluster) -> None:
    with pytest.warns(UserWarning, match="CPU: 4 .the largest node has 2"):
        pg = placement_group([{"CPU": 4}], strategy="STRICT_PACK")
    assert not pg.wait(0.5)
    assert placement_group_table(pg)["state"] == "PENDING"
    big = cluster.add_node(num_cpus=4, object_store_memory=STORE, _system_config=FAST)
    try:
        assert pg.wait(30)
        assert nodes_of(pg) == [big.node_id]
        remove_placement_group(pg)
    finally:
        cluster.remove_node(big)
        wait_until(lambda: big.node_id not in cluster.alive_node_ids(), what="the big node gone")


def test_bundles_on_a_dead_node_are_placed_again(cluster) -> None:
    extra = cluster.add_node(num_cpus=2, object_store_memory=STORE, _system_config=FAST)
    pg = placement_group([{"CPU": 2}] * 4, strategy="STRICT_SPREAD")
    assert pg.wait(30)
    assert extra.node_id in nodes_of(pg)
    index = nodes_of(pg).index(extra.node_id)

    @manta.remote(num_cpus=1, max_restarts=1, max_task_retries=-1)
    class Member:
        def where(self) -> str:
            return node_id()

        def pid(self) -> int:
            return os.getpid()

    members = [Member.options(scheduling_strategy=in_bundle(pg, i)).remote() for i in range(4)]
    before = manta.get([x.where.remote() for x in members])
    assert before == nodes_of(pg)
    survivor = (index + 1) % 4
    survivor_pid = manta.get(members[survivor].pid.remote())
    cluster.remove_node(extra, allow_graceful=False)
    # Only the lost bundle is placed again; three nodes cannot take a fourth STRICT_SPREAD
    # bundle, so it waits, while the other bundles (and their actors) stay as they were.
    wait_until(lambda: placement_group_table(pg)["state"] == "RESCHEDULING", what="rescheduling")
    assert manta.get(members[survivor].pid.remote()) == survivor_pid
    again = cluster.add_node(num_cpus=2, object_store_memory=STORE, _system_config=FAST)
    try:
        assert pg.wait(30)
        placed = nodes_of(pg)
        assert placed[index] == again.node_id
        assert [p for i, p in enumerate(placed) if i != index] == [
            p for i, p in enumerate(before) if i != index
        ]
        # The lost actor restarted in its bundle on the new node; the others never moved.
        assert manta.get(members[index].where.remote(), timeout=60) == again.node_id
        assert manta.get(members[survivor].pid.remote()) == survivor_pid
        remove_placement_group(pg)
    finally:
        cluster.remove_node(again)
        wait_until(lambda: again.node_id not in cluster.alive_node_ids(), what="the extra node gone")


def test_a_group_ends_with_its_job_unless_detached(cluster) -> None:
    script = """
import sys, manta
from manta.util.placement_group import placement_group
manta.init(address=sys.argv[1], namespace="pg-jobs")
placement_group([{"CPU": 1}], name="mine").wait(30)
placement_group([{"CPU": 1}], name="kept", lifetime="detached").wait(30)
manta.shutdown()
"""
    done = subprocess.run(
        [sys.executable, "-c", script, cluster.address], capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr
    states = {row["name"]: row["state"] for row in placement_group_table().values()}
    wait_until(
        lambda: {r["name"]: r["state"] for r in placement_group_table().values()}.get("mine") == "REMOVED"
    )
    assert states.get("kept") == "CREATED"
    # The detached group outlived its job; it is found by name in its namespace.
    kept = next(r for r in placement_group_table().values() if r["name"] == "kept")
    manta.shutdown()
    manta.init(address=cluster.address, namespace="pg-jobs")
    found = get_placement_group("kept")
    assert found.id.hex() == kept["placement_group_id"]
    remove_placement_group(found)


@pytest.mark.parametrize(
    ("bundles", "kwargs", "message"),
    [
        ([], {}, "non-empty list"),
        ([{}], {}, "empty dictionary or resources with only 0 values"),
        ([{"CPU": 0}], {}, "only 0 values"),
        ([{"CPU": -1}], {}, "negative"),
        ([{"CPU": 1}], {"strategy": "TIGHT"}, "Supported strategies are: \\['PACK', 'SPREAD'"),
        ([{"CPU": 1}], {"lifetime": "forever"}, "lifetime"),
    ],
)
def test_bad_groups_are_refused(cluster, bundles, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        placement_group(bundles, **kwargs)


def test_a_bundle_index_out_of_range_is_refused(cluster) -> None:
    pg = placement_group([{"CPU": 1}])
    with pytest.raises(ValueError, match="placement_group_bundle_index"):
        where.options(scheduling_strategy=in_bundle(pg, 1)).remote()
    remove_placement_group(pg)


def test_child_tasks_are_captured_only_when_asked(cluster) -> None:
    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_SPREAD")
    assert pg.wait(30)

    @manta.remote(num_cpus=0)
    def child() -> tuple[str | None, str]:
        current = manta.util.get_current_placement_group()
        return (current.id.hex() if current else None), node_id()

    @manta.remote(num_cpus=1)
    def parent() -> tuple[str | None, list]:
        current = manta.util.get_current_placement_group()
        return (current.id.hex() if current else None), manta.get([child.remote() for _ in range(4)])

    captured = PlacementGroupSchedulingStrategy(pg, 0, placement_group_capture_child_tasks=True)
    group, children = manta.get(parent.options(scheduling_strategy=captured).remote())
    assert group == pg.id.hex()
    assert {c[0] for c in children} == {pg.id.hex()}
    assert {c[1] for c in children} <= set(nodes_of(pg))  # inside the group's bundles
    group, children = manta.get(parent.options(scheduling_strategy=in_bundle(pg, 0)).remote())
    assert group == pg.id.hex() and {c[0] for c in children} == {None}  # not captured
    assert manta.util.get_current_placement_group() is None  # a driver is in no group
    remove_placement_group(pg)


def test_manta_status_lists_groups_and_waiting_ones_as_demand(cluster) -> None:
    placed = placement_group([{"CPU": 1}], name="placed")
    assert placed.wait(30)
    with pytest.warns(UserWarning):
        waiting = placement_group([{"CPU": 1}] * 4, strategy="STRICT_SPREAD", name="waiting")
    env = {**os.environ, "MANTA_AUTH_TOKEN": cluster._token.decode()}
    status = subprocess.run(
        [sys.executable, "-m", "manta.cli.main", "status", "--address", cluster.address, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    states = {g["name"]: g["state"] for g in report["placement_groups"]}
    assert states == {"placed": "CREATED", "waiting": "PENDING"}
    assert any("placement_group" in shape for shape in report["pending"])
    remove_placement_group(placed)
    remove_placement_group(waiting)


def test_tasks_waiting_for_a_removed_group_fail(cluster) -> None:
    with pytest.warns(UserWarning):
        pg = placement_group([{"CPU": 1}] * 4, strategy="STRICT_SPREAD")  # 3 nodes: never placed
    waiting = where.options(scheduling_strategy=in_bundle(pg, 0)).remote()
    ready = pg.ready()
    with pytest.raises(GetTimeoutError):
        manta.get([waiting, ready], timeout=0.5)
    remove_placement_group(pg)
    for ref in (waiting, ready):
        with pytest.raises(TaskPlacementGroupRemoved, match=pg.id.hex()):
            manta.get(ref, timeout=30)


def test_bundle_label_selectors_use_rays_syntax(cluster) -> None:
    # No node has a zone label: "!a" holds everywhere, "in(a,b)" nowhere.
    anywhere = placement_group([{"CPU": 1}], bundle_label_selector=[{"zone": "!a"}])
    assert anywhere.wait(30)
    with pytest.warns(UserWarning, match="cannot be placed"):
        nowhere = placement_group([{"CPU": 1}], bundle_label_selector=[{"zone": "in(a,b)"}])
    assert not nowhere.wait(0.5)
    remove_placement_group(anywhere)
    remove_placement_group(nowhere)
    with pytest.raises(ValueError, match="one dict per bundle"):
        placement_group([{"CPU": 1}], bundle_label_selector=[{}, {}])


def test_the_readme_gang_scheduling_example_runs(cluster, capsys) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("### Gang scheduling with placement groups", 1)[1]
    code = section.split("```python", 1)[1].split("```", 1)[0]
    fourth = cluster.add_node(num_cpus=2, object_store_memory=STORE, _system_config=FAST)
    try:
        exec(compile(code, "README.md", "exec"), {"ray": manta})
        assert capsys.readouterr().out.strip() == "[0, 1, 2, 3]"
    finally:
        cluster.remove_node(fourth)
        wait_until(lambda: fourth.node_id not in cluster.alive_node_ids(), what="the fourth node gone")


def test_work_in_a_gpu_bundle_sees_that_bundles_gpus(cluster) -> None:
    gpus = cluster.add_node(num_cpus=2, num_gpus=2, object_store_memory=STORE, _system_config=FAST)
    try:
        pg = placement_group([{"GPU": 1, "CPU": 1}, {"GPU": 1, "CPU": 1}], strategy="STRICT_PACK")
        assert pg.wait(30) and nodes_of(pg) == [gpus.node_id] * 2

        @manta.remote(num_gpus=1, num_cpus=1)
        def visible() -> tuple[list, str | None]:
            return manta.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES")

        first = manta.get(visible.options(scheduling_strategy=in_bundle(pg, 0)).remote())
        second = manta.get(visible.options(scheduling_strategy=in_bundle(pg, 1)).remote())
        assert len(first[0]) == 1 and len(second[0]) == 1 and first[0] != second[0]
        assert first[1] == str(first[0][0]) and second[1] == str(second[0][0])
        remove_placement_group(pg)
    finally:
        cluster.remove_node(gpus)
        wait_until(lambda: gpus.node_id not in cluster.alive_node_ids(), what="the GPU node gone")
