"""A cluster of three node daemons on this machine: placement across nodes (spillback,
SPREAD, node affinity, labels), infeasible work picked up by a node that joins later, and
objects moving between the nodes' stores."""

from __future__ import annotations

import time

import numpy as np
import pytest

import manta
from manta._private.api.gcs_client import GcsClient
from manta._private.rpc import messages as m
from manta.cluster_utils import Cluster
from manta.exceptions import ActorDiedError, GetTimeoutError, TaskUnschedulableError
from manta.util.scheduling_strategies import (
    In,
    NodeAffinitySchedulingStrategy,
    NodeLabelSchedulingStrategy,
    NotIn,
)
from tests.polling import wait_until

pytestmark = pytest.mark.timeout(120)

STORE = 256 * 1024 * 1024


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    try:
        head = c.add_node(num_cpus=1, object_store_memory=STORE, labels={"zone": "head"})
        a = c.add_node(num_cpus=2, resources={"a": 1}, object_store_memory=STORE, labels={"zone": "a"})
        b = c.add_node(num_cpus=1, resources={"b": 1}, object_store_memory=STORE, labels={"zone": "b"})
        c.connect()
        yield c, head, a, b
    finally:
        c.shutdown()


def node_id() -> str:
    return manta.get_runtime_context().get_node_id()


@manta.remote
def where() -> str:
    return node_id()


def test_the_driver_sees_every_node(cluster) -> None:
    _c, head, a, b = cluster
    alive = {n["NodeID"] for n in manta.nodes() if n["Alive"]}
    assert alive == {head.node_id, a.node_id, b.node_id}
    assert manta.cluster_resources()["CPU"] == 4
    assert node_id() == head.node_id  # drivers attach to the head node
    heads = [n for n in manta.nodes() if "node:__internal_head__" in n["Resources"]]
    assert [n["NodeID"] for n in heads] == [head.node_id]


def test_custom_resources_send_tasks_to_the_node_that_has_them(cluster) -> None:
    _c, _head, a, b = cluster
    assert manta.get(where.options(resources={"a": 0.5}).remote()) == a.node_id
    assert manta.get(where.options(resources={"b": 1}).remote()) == b.node_id
    # More CPUs than the head has go to the node that has them.
    assert manta.get(where.options(num_cpus=2).remote()) == a.node_id


def test_a_busy_head_spills_tasks_to_other_nodes(cluster) -> None:
    @manta.remote
    def hold(seconds: float) -> str:
        time.sleep(seconds)
        return node_id()

    places = manta.get([hold.remote(1.0) for _ in range(4)])
    assert len(set(places)) >= 2, places


def test_spread_uses_every_node(cluster) -> None:
    _c, head, a, b = cluster

    @manta.remote(scheduling_strategy="SPREAD")
    def hold() -> str:
        time.sleep(0.5)
        return node_id()

    # SPREAD round-robins over the nodes that can take a task now: let all be idle.
    wait_until(lambda: manta.available_resources().get("CPU") == 4, what="every CPU to be free")
    places = manta.get([hold.remote() for _ in range(3)])
    assert set(places) == {head.node_id, a.node_id, b.node_id}


def test_hard_node_affinity_pins_tasks_to_a_node(cluster) -> None:
    _c, _head, _a, b = cluster
    strategy = NodeAffinitySchedulingStrategy(b.node_id, soft=False)
    assert set(manta.get([where.options(scheduling_strategy=strategy).remote() for _ in range(4)])) == {
        b.node_id
    }


def test_node_affinity_to_a_node_that_does_not_exist(cluster) -> None:
    missing = "ab" * 28
    soft = NodeAffinitySchedulingStrategy(missing, soft=True)
    assert manta.get(where.options(scheduling_strategy=soft).remote())  # ran somewhere
    hard = NodeAffinitySchedulingStrategy(missing, soft=False)
    with pytest.raises(TaskUnschedulableError, match=missing):
        manta.get(where.options(scheduling_strategy=hard).remote(), timeout=30)


def test_label_selectors_choose_nodes(cluster) -> None:
    _c, head, a, b = cluster
    to_b = NodeLabelSchedulingStrategy(hard={"zone": In("b")})
    assert manta.get(where.options(scheduling_strategy=to_b).remote()) == b.node_id
    not_head_or_a = NodeLabelSchedulingStrategy(hard={"zone": NotIn("head", "a")})
    assert manta.get(where.options(scheduling_strategy=not_head_or_a).remote()) == b.node_id
    assert manta.get(where.options(label_selector={"zone": "a"}).remote()) == a.node_id
    assert manta.get(where.options(label_selector={"zone": "!in(a,b)"}).remote()) == head.node_id
    soft = NodeLabelSchedulingStrategy(hard={"zone": In("a", "b")}, soft={"zone": In("a")})
    assert manta.get(where.options(scheduling_strategy=soft).remote()) == a.node_id


def test_bad_label_selectors_are_refused_at_the_call() -> None:
    with pytest.raises(ValueError, match="In"):
        NodeLabelSchedulingStrategy(hard={"zone": "b"})
    with pytest.raises(ValueError, match="label_selector"):
        where.options(label_selector={"zone": ""})


def test_actors_go_to_the_node_with_their_resources(cluster) -> None:
    _c, _head, a, _b = cluster

    @manta.remote(resources={"a": 0.5})
    class Counter:
        def __init__(self) -> None:
            self.n = 0

        def add(self, k: int) -> tuple[int, str]:
            self.n += k
            return self.n, node_id()

    counter = Counter.remote()
    results = manta.get([counter.add.remote(i) for i in range(1, 11)])
    assert [n for n, _ in results] == [sum(range(1, i + 1)) for i in range(1, 11)]
    assert {place for _, place in results} == {a.node_id}
    manta.kill(counter)


def test_an_actor_with_hard_affinity_to_a_missing_node_fails_instead_of_waiting(cluster) -> None:
    @manta.remote
    class Anywhere:
        def where(self) -> str:
            return node_id()

    missing = "cd" * 28
    stuck = Anywhere.options(scheduling_strategy=NodeAffinitySchedulingStrategy(missing, soft=False)).remote()
    with pytest.raises(ActorDiedError, match="not schedulable"):
        manta.get(stuck.where.remote(), timeout=30)
    _c, _head, _a, b = cluster
    pinned = Anywhere.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(b.node_id, soft=False)
    ).remote()
    assert manta.get(pinned.where.remote()) == b.node_id
    manta.kill(pinned)


def test_actors_holding_cpus_fill_every_node(cluster) -> None:
    _c, head, a, b = cluster

    @manta.remote(num_cpus=1)
    class Busy:
        def where(self) -> str:
            return node_id()

    wait_until(lambda: manta.available_resources().get("CPU") == 4, what="every CPU to be free")
    actors = [Busy.remote() for _ in range(4)]  # one per CPU: the gcs and the nodes must agree
    places = manta.get([x.where.remote() for x in actors], timeout=30)
    assert sorted(places) == sorted([head.node_id, a.node_id, a.node_id, b.node_id])
    for x in actors:
        manta.kill(x)


def test_large_objects_move_between_nodes(cluster) -> None:
    _c, _head, _a, b = cluster

    @manta.remote(resources={"a": 0.1})
    def make(n: int) -> np.ndarray:
        return np.arange(n, dtype=np.int64)

    @manta.remote(resources={"b": 0.1})
    def checksum(x: np.ndarray) -> tuple[int, int, str]:
        return int(x.sum()), len(x), node_id()

    n = 5_000_000  # 40 MB
    made = make.remote(n)
    expected = n * (n - 1) // 2
    # A's result read on B (a task argument), and on the head (the driver's get).
    assert manta.get(checksum.remote(made)) == (expected, n, b.node_id)
    array = manta.get(made)
    assert int(array.sum()) == expected and array[-1] == n - 1
    # The driver's put, read on A.
    put = manta.put(np.full(3_000_000, 7, dtype=np.uint8))
    assert manta.get(checksum.options(resources={"a": 0.1}).remote(put))[:2] == (21_000_000, 3_000_000)


def test_concurrent_readers_of_one_remote_object_share_a_pull(cluster) -> None:
    @manta.remote(resources={"a": 0.1})
    def make() -> np.ndarray:
        return np.arange(2_000_000, dtype=np.int32)

    @manta.remote(resources={"b": 0.25})
    def read(x: np.ndarray) -> int:
        return int(x[::1000].sum())

    made = make.remote()
    expected = int(np.arange(2_000_000, dtype=np.int64)[::1000].sum())
    assert manta.get([read.remote(made) for _ in range(4)]) == [expected] * 4


def test_refs_inside_values_resolve_across_nodes(cluster) -> None:
    @manta.remote(resources={"a": 0.1})
    def inner() -> np.ndarray:
        return np.ones(1_000_000, dtype=np.float64)

    @manta.remote(resources={"b": 0.1})
    def outer(box: list) -> float:
        return float(manta.get(box[0]).sum())

    assert manta.get(outer.remote([inner.remote()])) == 1_000_000.0


def test_generators_stream_across_nodes(cluster) -> None:
    _c, _head, _a, b = cluster

    @manta.remote(resources={"b": 0.1})
    def chunks(n: int):
        for i in range(n):
            yield np.full(1_000_000, i, dtype=np.uint8)  # 1 MB each: in B's store

    @manta.remote(resources={"a": 0.1})
    def total(x: np.ndarray) -> int:
        return int(x.sum())

    gen = chunks.remote(4)
    sums = [manta.get(total.remote(ref)) for ref in gen]  # B's items read on A
    assert sums == [i * 1_000_000 for i in range(4)]
    assert [int(manta.get(r)[0]) for r in chunks.remote(3)] == [0, 1, 2]  # and on the head

    @manta.remote(resources={"b": 0.1})
    class Source:
        def where(self):
            for _ in range(2):
                yield node_id()

    assert [manta.get(r) for r in Source.remote().where.remote()] == [b.node_id] * 2


def test_infeasible_work_waits_for_a_node_that_fits(cluster) -> None:
    c = cluster[0]
    ref = where.options(resources={"late": 1}).remote()
    with pytest.raises(GetTimeoutError):
        manta.get(ref, timeout=1.0)
    # The gcs (and so `manta status`) lists it as infeasible demand meanwhile.
    wait_until(
        lambda: any({"late": 1.0}.items() <= shape.items() for shape in infeasible(c)), what="it to be listed"
    )
    late = c.add_node(num_cpus=1, resources={"late": 1}, object_store_memory=STORE)
    try:
        assert manta.get(ref, timeout=30) == late.node_id
    finally:
        c.remove_node(late)
    wait_until(lambda: late.node_id not in c.alive_node_ids(), what="the removed node to be dead")


def test_every_resource_is_free_again_when_the_work_is_done(cluster) -> None:
    # Leases granted by other nodes (spillback) went back to those nodes.
    total = manta.cluster_resources()
    wait_until(
        lambda: all(manta.available_resources().get(k, 0) == total[k] for k in ("CPU", "a", "b")),
        what="every node's CPUs and custom resources to be free",
    )


def infeasible(c: Cluster) -> list[dict[str, float]]:
    with GcsClient(c.address, c._token) as gcs:
        return [shape for state in gcs.call(m.GetNodes()) if state.alive for shape in state.infeasible]


def test_tasks_run_where_their_large_arguments_are(cluster) -> None:
    """Locality-aware leasing: with no constraint of its own, a task whose argument lies in
    another node's store is leased there (the head, where the driver is, is idle)."""
    _, _, a, _ = cluster

    @manta.remote(resources={"a": 1})
    def make() -> bytes:
        return b"x" * (4 << 20)

    @manta.remote
    def consume(data: bytes) -> tuple[str, int]:
        return node_id(), len(data)

    big = make.remote()
    manta.wait([big])
    for _ in range(3):
        assert manta.get(consume.remote(big)) == (a.node_id, 4 << 20)


def _transfer_port(node) -> int:
    """The node daemon's object-transfer port: its listening TCP port other than its RPC one."""
    import json
    import os

    import psutil

    with open(os.path.join(node.session_dir, "address.json")) as f:
        rpc_port = json.load(f)["node_port"]
    daemon = psutil.Process(node.pids["node"])
    ports = {c.laddr.port for c in daemon.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    [port] = ports - {rpc_port}
    return port


def test_a_flood_on_the_transfer_port_does_not_stop_transfers(cluster) -> None:
    """Connections that never present a ticket, first past the daemon's descriptor limit
    (its accept loop must back off and keep going), then past the cap on such connections:
    afterwards objects still move off that node."""
    import socket
    from pathlib import Path

    import psutil

    from tests.polling import poll

    _c, _head, a, _ = cluster
    port = _transfer_port(a)
    daemon = psutil.Process(a.pids["node"])
    soft, hard = daemon.rlimit(psutil.RLIMIT_NOFILE)
    flood: list[socket.socket] = []
    try:
        daemon.rlimit(psutil.RLIMIT_NOFILE, (daemon.num_fds() + 10, hard))
        for _ in range(60):
            flood.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(0.5)  # the daemon is out of descriptors now, its accept loop backing off
        log = Path(a.session_dir, "logs", "node.err")
        assert poll(lambda: "object-transfer port cannot accept now" in log.read_text(), timeout=10)
    finally:
        for sock in flood:
            sock.close()
        daemon.rlimit(psutil.RLIMIT_NOFILE, (soft, hard))
    flood = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(150)]
    try:
        time.sleep(0.5)  # past the cap: the excess is dropped at once

        @manta.remote(resources={"a": 0.1})
        def make() -> np.ndarray:
            return np.ones(2_000_000, dtype=np.uint8)

        assert int(manta.get(make.remote(), timeout=30).sum()) == 2_000_000
    finally:
        for sock in flood:
            sock.close()
    assert daemon.is_running() and daemon.status() != psutil.STATUS_ZOMBIE
