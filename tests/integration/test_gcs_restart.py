"""The head's gcs crashing (SIGKILL) and coming back on durable storage: sqlite, and a
real redis-server. Work keeps running through the gap; afterwards the tables are back
(jobs, named and detached actors, nodes) and drivers and node daemons have reconnected."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator

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
