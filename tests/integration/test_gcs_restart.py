"""The head's gcs crashing (SIGKILL) and coming back on durable storage: sqlite, and a
real redis-server. Work keeps running through the gap; afterwards the tables are back
(jobs, named and detached actors, nodes) and drivers and node daemons have reconnected."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import manta
from manta.cluster_utils import Cluster
from tests.polling import wait_until
from tests.redis_server import redis_server

pytestmark = pytest.mark.timeout(180)

STORE = 128 * 1024 * 1024


@contextlib.contextmanager
def storage_url(kind: str, tmp_path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path}/gcs.db"
    else:
        with redis_server() as url:
            yield url + "?namespace=restart-test"


@contextlib.contextmanager
def driver_script(script: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    """A driver running ``script`` with ``args``, its output (and errors) piped; killed if
    the test leaves it running."""
    child = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()


@pytest.fixture(params=["sqlite", "redis"])
def cluster(request, tmp_path):
    with storage_url(request.param, tmp_path) as url:
        c = Cluster()
        try:
            head = c.add_node(num_cpus=1, object_store_memory=STORE, storage=url)
            worker = c.add_node(num_cpus=2, resources={"w": 2}, object_store_memory=STORE)
            c.connect(namespace="restart")
            yield c, head, worker
        finally:
            c.shutdown()


@manta.remote
class Counter:
    def __init__(self) -> None:
        self.n = 0

    def add(self) -> int:
        self.n += 1
        return self.n

    def pid(self) -> int:
        return os.getpid()


def test_the_cluster_works_through_a_gcs_restart_and_finds_its_actors_after(cluster, tmp_path) -> None:
    _c, head, worker = cluster

    @manta.remote(resources={"w": 1})
    def slow(i: int) -> int:
        time.sleep(1.0)
        return i * i

    named = Counter.options(name="keeper", lifetime="detached", resources={"w": 0.5}).remote()
    plain = Counter.options(resources={"w": 0.5}).remote()
    assert manta.get([named.add.remote(), plain.add.remote()]) == [1, 1]
    named_pid = manta.get(named.pid.remote())
    running = [slow.remote(i) for i in range(4)]

    killed = time.monotonic()
    head.restart_gcs()
    restarted = time.monotonic()

    # Through the gap and after it: running tasks finish, actors answer, new tasks run.
    assert manta.get(running, timeout=60) == [0, 1, 4, 9]
    assert manta.get([named.add.remote(), plain.add.remote()], timeout=30) == [2, 2]
    assert manta.get(slow.remote(5), timeout=60) == 25

    # The gcs's tables came back: the detached actor is found by name (the same process),
    # both nodes are alive, and new actors (which need the gcs) can be made.
    found = wait_until(lambda: _lookup("keeper"), timeout=30, what="the named actor to be found again")
    assert manta.get(found.pid.remote()) == named_pid
    assert "keeper" in [a["name"] for a in manta.util.list_named_actors(all_namespaces=True)]
    alive = wait_until(
        lambda: {n["NodeID"] for n in manta.nodes() if n["Alive"]} == {head.node_id, worker.node_id},
        timeout=30,
        what="both nodes to be alive in the restarted gcs",
    )
    assert alive
    fresh = Counter.options(resources={"w": 0.5}).remote()
    assert manta.get(fresh.add.remote(), timeout=30) == 1
    # Functions defined after the restart are exported to the new gcs and run.

    @manta.remote
    def after() -> str:
        return "after"

    assert manta.get(after.remote(), timeout=30) == "after"
    print(f"gcs restarted in {restarted - killed:.2f} s")
    manta.kill(named)


def test_an_actor_dying_while_the_gcs_is_down_is_restarted_when_it_is_back(cluster) -> None:
    _c, head, _worker = cluster
    actor = Counter.options(max_restarts=1, max_task_retries=-1, resources={"w": 0.5}).remote()
    first = manta.get(actor.pid.remote())
    gcs = head._processes.procs["gcs"]
    gcs.kill()
    gcs.wait()
    os.kill(first, 9)  # the actor's worker dies while nobody watches
    time.sleep(0.5)
    head.restart_gcs()
    second = manta.get(actor.pid.remote(), timeout=60)
    assert second != first and manta.get(actor.add.remote()) == 1


def _lookup(name: str):
    try:
        return manta.get_actor(name, namespace="restart")
    except ValueError:
        return None


def test_a_node_that_loses_the_gcs_past_the_timeout_exits_with_its_workers() -> None:
    c = Cluster()
    try:
        head = c.add_node(num_cpus=0, object_store_memory=STORE)
        worker = c.add_node(
            num_cpus=1, object_store_memory=STORE, _system_config={"gcs_reconnect_timeout_s": 1.0}
        )
        daemon = psutil.Process(worker.pids["node"])
        workers = [p for p in daemon.children(recursive=True)]
        assert workers  # the worker template and its prestarted workers
        gcs = head._processes.procs["gcs"]
        gcs.kill()
        gcs.wait()
        lost = time.monotonic()
        wait_until(lambda: not worker.alive(), timeout=20, what="the node daemon to give up on the gcs")
        print(f"node daemon exited {time.monotonic() - lost:.1f} s after losing the gcs")
        wait_until(
            lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in workers),
            what="its workers to exit with it",
        )
        with open(os.path.join(worker.session_dir, "logs", "node.err")) as f:
            assert "the gcs did not come back" in f.read()
    finally:
        c.shutdown()


def test_a_driver_that_exits_while_the_gcs_is_down_has_its_job_ended(tmp_path) -> None:
    c = Cluster()
    try:
        head = c.add_node(
            num_cpus=1,
            object_store_memory=STORE,
            storage=f"sqlite:///{tmp_path}/gcs.db",
            _system_config={"gcs_reconnect_timeout_s": 3.0},
        )
        c.add_node(num_cpus=1, object_store_memory=STORE)
        go = tmp_path / "go"
        child = subprocess.Popen(
            [sys.executable, "-c", _EXITING_DRIVER, c.address, str(go)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            actor_pid = int(child.stdout.readline().split()[1])
            gcs = head._processes.procs["gcs"]
            gcs.kill()
            gcs.wait()
            go.touch()  # the driver shuts down while nobody can hear it
            assert child.wait(30) == 0
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stdout.close()
        head.restart_gcs()
        # Its job is ended once it has not come back in time, and with it its actor.
        wait_until(
            lambda: not psutil.pid_exists(actor_pid), timeout=30, what="the orphaned actor to be stopped"
        )
        c.connect()
        wait_until(lambda: manta.available_resources().get("CPU") == 2, what="its CPU to be free again")
    finally:
        c.shutdown()


_EXITING_DRIVER = """
import os, sys, time, manta
manta.init(address=sys.argv[1])

@manta.remote(num_cpus=1)
class Holder:
    def pid(self):
        return os.getpid()

holder = Holder.remote()
print("ACTOR", manta.get(holder.pid.remote()), flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
manta.shutdown()
"""


@pytest.mark.parametrize("cut_at", ["RegisterJob", "Subscribe"])
def test_a_driver_starting_while_the_gcs_restarts_carries_on_with_the_new_one(
    cluster, tmp_path, cut_at
) -> None:
    """The gcs restarts while a driver's init() registers its job or subscribes to its
    logs: init() waits for the new gcs, and the job runs with its workers' output."""
    c, head, _worker = cluster
    cut, go = tmp_path / "cut", tmp_path / "go"
    with driver_script(_CUT_DRIVER, c.address, cut_at, str(cut), str(go)) as child:
        wait_until(cut.exists, timeout=60, what=f"the driver to send {cut_at}")
        head.restart_gcs()  # the call in flight goes to a gcs that is gone
        go.touch()
        out, _ = child.communicate(timeout=90)
    assert child.returncode == 0, out
    assert "RESULT 42" in out and "said by a worker" in out, out


def test_worker_output_printed_while_the_gcs_is_down_reaches_the_driver_after(cluster, tmp_path) -> None:
    """Lines printed while the gcs is away are kept by the node and sent once it is back
    (and by the gcs until the driver has subscribed again).
    (A batch already sent when the gcs is killed dies with it: the lines printed within a
    log poll of the kill are not asserted on.)"""
    c, head, _worker = cluster
    started = tmp_path / "started"
    with driver_script(_TICKING_DRIVER, c.address, str(started)) as child:
        wait_until(started.exists, timeout=60, what="the ticking task to start")
        gcs = head._processes.procs["gcs"]
        gcs.kill()
        gcs.wait()
        killed = time.time()
        time.sleep(2.0)  # ticks printed meanwhile have nowhere to go yet
        back = time.time()
        head.restart_gcs()
        out, _ = child.communicate(timeout=90)
    assert child.returncode == 0, out
    ticks = {int(line.split()[-2]): float(line.split()[-1]) for line in out.splitlines() if " tick " in line}
    # (The node may still send into the dead gcs's socket for a moment after the kill.)
    late = min(i for i, at in ticks.items() if at > killed + 0.5)
    assert ticks[late] < back, out  # printed while the gcs was down, and received
    assert all(i in ticks for i in range(late, 50)), out


def test_output_sent_before_its_driver_subscribes_is_handed_to_it_on_subscribing(cluster) -> None:
    """After a restart the nodes are back before the drivers: the gcs keeps a job's output
    until its driver subscribes again (and hands it over once), instead of losing it."""
    import asyncio

    from manta._private.common.ids import JobID, NodeID, WorkerID
    from manta._private.rpc import messages as m
    from manta._private.rpc.endpoints import connect
    from manta._private.rpc.transport import Dispatcher

    c, head, _worker = cluster
    token = Path(head.session_dir, "token").read_bytes().strip()
    me = m.Address(NodeID.from_random(), WorkerID.from_random(), "127.0.0.1", 1, "", os.getpid())
    received: list[m.LogBatch] = []
    dispatcher = Dispatcher()
    dispatcher.register(m.Published, lambda conn, msg: received.append(msg.payload))
    onlooker_got: list[m.LogBatch] = []
    onlookers = Dispatcher()
    onlookers.register(m.Published, lambda conn, msg: onlooker_got.append(msg.payload))

    async def main() -> None:
        driver = await connect(c.address, token, dispatcher, kind="driver", max_frame_bytes=1 << 20)
        job = await asyncio.wait_for(driver.call(m.RegisterJob(me, "ns", {})), 10)
        node = await connect(c.address, token, onlookers, kind="driver", max_frame_bytes=1 << 20)
        for i in range(3):
            node.notify(m.LogBatch(JobID(job), me.node_id, "127.0.0.1", 7, "t", False, [f"line {i}"]))
        await asyncio.wait_for(node.call(m.GetAllJobs()), 10)  # the batches are in
        # Another follower of the job's logs (not its driver) is not handed what is kept.
        await asyncio.wait_for(node.call(m.Subscribe("logs", job)), 10)
        await asyncio.wait_for(driver.call(m.Subscribe("logs", job)), 10)
        # (Notifications come before the answer on the same connection.)
        await asyncio.wait_for(driver.call(m.Subscribe("logs", job)), 10)  # handed over once
        for each in (driver, node):
            each.close()
        await asyncio.sleep(0.1)  # for the transports to close

    asyncio.run(main())
    assert [batch.lines for batch in received] == [["line 0"], ["line 1"], ["line 2"]]
    assert onlooker_got == []


_TICKING_DRIVER = """
import sys, time, manta
manta.init(address=sys.argv[1])

@manta.remote
def tick(started):
    open(started, "w").close()
    for i in range(50):
        print("tick", i, time.time(), flush=True)
        time.sleep(0.1)

manta.get(tick.remote(sys.argv[2]))
time.sleep(1.5)  # for the last lines to reach this driver
manta.shutdown()
"""


def test_a_driver_that_registers_again_after_a_restart_keeps_its_job(cluster) -> None:
    """The gcs stores a registration and dies before its answer is out: the driver asks the
    new gcs again and gets the same job (not a second one, whose end would later be taken
    for its driver's death)."""
    import asyncio

    from manta._private.common.ids import NodeID, WorkerID
    from manta._private.rpc import messages as m
    from manta._private.rpc.endpoints import connect
    from manta._private.rpc.transport import Dispatcher

    c, head, _worker = cluster
    token = Path(head.session_dir, "token").read_bytes().strip()
    me = m.Address(NodeID.from_random(), WorkerID.from_random(), "127.0.0.1", 1, "", os.getpid())
    other = m.Address(NodeID.from_random(), WorkerID.from_random(), "127.0.0.1", 2, "", os.getpid())

    async def register(address: m.Address) -> tuple[bytes, Any]:
        conn = await connect(c.address, token, Dispatcher(), kind="driver", max_frame_bytes=1 << 20)
        return await asyncio.wait_for(conn.call(m.RegisterJob(address, "ns", {})), 10), conn

    async def main() -> None:
        first, kept = await register(me)  # left open: its job stays alive
        await asyncio.to_thread(head.restart_gcs)
        again, conn = await register(me)
        another, conn2 = await register(other)
        for each in (kept, conn, conn2):
            each.close()
        await asyncio.sleep(0.1)  # for the transports to close
        assert again == first and another != first

    asyncio.run(main())


# A driver whose first ``cut_at`` call to the gcs waits (holding the message) until the
# test has restarted the gcs: the message then goes on the old, closed connection.
_CUT_DRIVER = """
import asyncio, os, sys, time
from manta._private.rpc import messages as m
from manta._private.rpc.transport import Connection

address, cut_at, cut, go = sys.argv[1:]
original = Connection.call

async def held(conn, msg, *args, **kwargs):
    while not os.path.exists(go):
        await asyncio.sleep(0.02)
    return await original(conn, msg, *args, **kwargs)

def call(conn, msg, *args, **kwargs):
    if type(msg).__name__ == cut_at and not os.path.exists(cut):
        open(cut, "w").close()
        return asyncio.ensure_future(held(conn, msg, *args, **kwargs))
    return original(conn, msg, *args, **kwargs)

Connection.call = call
import manta
manta.init(address=address)

@manta.remote
def answer():
    print("said by a worker", flush=True)
    return 42

print("RESULT", manta.get(answer.remote()), flush=True)
time.sleep(1)  # for the worker's line to reach this driver
manta.shutdown()
"""


def test_actors_cut_off_mid_creation_or_killed_right_after_a_restart_leave_nothing_behind(cluster) -> None:
    _c, head, _worker = cluster

    @manta.remote(num_cpus=1, resources={"w": 0.5})
    class Slow:
        def __init__(self) -> None:
            time.sleep(2.0)

        def pid(self) -> int:
            return os.getpid()

    slow = Slow.remote()
    time.sleep(0.7)  # its constructor runs when the gcs goes
    head.restart_gcs()
    assert manta.get(slow.pid.remote(), timeout=60)  # made again; the first attempt's worker ended
    victim = Counter.options(resources={"w": 0.5}).remote()
    victim_pid = manta.get(victim.pid.remote())
    head.restart_gcs()
    manta.kill(victim)  # may reach the gcs before the worker's node has reconnected to it
    manta.kill(slow)
    wait_until(lambda: not psutil.pid_exists(victim_pid), what="the killed actor's process to end")
    total = manta.cluster_resources()
    wait_until(
        lambda: (
            manta.available_resources().get("CPU") == total["CPU"]
            and manta.available_resources().get("w") == total["w"]
        ),
        timeout=30,
        what="every CPU and w to be free again",
    )


def test_requests_in_flight_when_the_gcs_dies_are_answered_by_the_restarted_one(cluster) -> None:
    """A job's supervisor once failed its job on a key-value write cut off by a restart."""
    from manta.experimental import internal_kv
    from manta.util.placement_group import placement_group

    _c, head, _worker = cluster
    with pytest.warns(UserWarning, match="cannot be placed"):
        waiting = placement_group([{"nowhere": 1}])  # no node has it: its wait stays in flight
    outcomes: dict[str, Any] = {}
    stop = threading.Event()

    def wait_for_the_group() -> None:
        try:
            outcomes["wait"] = waiting.wait(3)
        except Exception as e:
            outcomes["wait"] = e

    def write_and_read() -> None:
        n = 0
        try:
            while not stop.is_set():
                n += 1
                internal_kv._internal_kv_put(b"k", str(n).encode())
                assert internal_kv._internal_kv_get(b"k") == str(n).encode()
        except Exception as e:
            outcomes["kv"] = e
        else:
            outcomes["kv"] = n

    threads = [threading.Thread(target=wait_for_the_group), threading.Thread(target=write_and_read)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    head.restart_gcs()
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(60)
    assert outcomes["wait"] is False  # timed out on the new gcs, not failed by the old one's death
    assert isinstance(outcomes["kv"], int) and outcomes["kv"] > 1, outcomes["kv"]


def test_placement_groups_survive_a_gcs_restart(cluster) -> None:
    from manta.util.placement_group import get_placement_group, placement_group, remove_placement_group
    from manta.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    _c, head, worker = cluster
    pg = placement_group([{"CPU": 1}, {"w": 1}], strategy="PACK", name="kept")
    assert pg.wait(30)
    head.restart_gcs()
    found = wait_until(lambda: _group("kept"), timeout=30, what="the group to be found again")
    assert found == pg and found.wait(5)

    @manta.remote(num_cpus=1)
    def inside() -> str:
        return manta.get_runtime_context().get_node_id()

    strategy = PlacementGroupSchedulingStrategy(pg, 0)
    placed = manta.util.placement_group_table(pg)["bundles_to_node_id"][0]
    assert manta.get(inside.options(scheduling_strategy=strategy).remote(), timeout=30) == placed
    assert placed == worker.node_id  # PACK: both bundles on the one node that holds them
    remove_placement_group(found)
    total = manta.cluster_resources()
    wait_until(
        lambda: (
            manta.available_resources().get("w") == total["w"]
            and manta.available_resources().get("CPU") == total["CPU"]
        ),
        what="the group's resources back after removal",
    )
    with pytest.raises(ValueError):
        get_placement_group("kept")


def _group(name: str):
    from manta.util.placement_group import get_placement_group

    try:
        return get_placement_group(name)
    except ValueError:
        return None


@manta.remote(max_retries=0, resources={"w": 0.5})
def _owns_an_actor(path: str) -> None:
    actor = Counter.options(resources={"w": 0.5}).remote()
    with open(path, "w") as f:
        f.write(f"{os.getpid()} {manta.get(actor.pid.remote())}")
    time.sleep(120)


def test_an_owner_dying_while_the_gcs_is_down_has_its_actors_ended_when_it_is_back(cluster, tmp_path) -> None:
    # The node tells the gcs of the death once it is back (it used to drop the message).
    _c, head, _worker = cluster
    path = tmp_path / "pids"
    _owns_an_actor.remote(str(path))
    wait_until(lambda: path.exists() and path.read_text(), what="the owner and its actor")
    owner, actor = map(int, path.read_text().split())
    gcs = head._processes.procs["gcs"]
    gcs.kill()
    gcs.wait()
    os.kill(owner, 9)
    wait_until(lambda: not psutil.pid_exists(owner), what="the owner to die")
    time.sleep(0.5)  # its node hears of it while the gcs is away
    head.restart_gcs()
    wait_until(lambda: not psutil.pid_exists(actor), timeout=60, what="the owner's actor to be ended")
