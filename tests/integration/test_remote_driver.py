"""Remote drivers: ``init("manta://head:port")`` from a process with no Manta node, through
the head's client port only. This test process is the remote driver (the head runs as its
own daemons); drivers that lose their connection run as scripts through a TCP relay the
tests cut and restore."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

import manta
from manta._private.api.local_cluster import LocalCluster
from manta._private.api.node_resources import node_resources
from manta._private.common.config import Config
from manta.exceptions import AuthenticationError, PermissionDeniedError, RayTaskError
from manta.util.placement_group import placement_group, remove_placement_group
from manta.util.scheduling_strategies import PlacementGroupSchedulingStrategy
from tests.polling import wait_until
from tests.tcp_proxy import TcpProxy

# The head keeps a session this long for a client that lost its connection; each side
# pings the other this often and takes three silent beats for a dead link.
GRACE_S = 8
BEAT_S = 1


@pytest.fixture(scope="module")
def head():
    saved = {name: os.environ.get(name) for name in ("MANTA_CLIENT_GRACE_S", "MANTA_CLIENT_HEARTBEAT_S")}
    os.environ["MANTA_CLIENT_GRACE_S"] = str(GRACE_S)  # the head's, its sessions' and the clients'
    os.environ["MANTA_CLIENT_HEARTBEAT_S"] = str(BEAT_S)
    cluster = LocalCluster(Config.from_env())
    try:
        cluster.start(
            resources=node_resources(2, 0, None, 600 << 20),
            labels={},
            dashboard=("127.0.0.1", 0),
            client_port=0,
        )
        token = Path(cluster.session_dir, "token").read_text().strip()
        port = int(cluster.info["client_address"].rsplit(":", 1)[1])
        yield {"cluster": cluster, "port": port, "token": token, "address": cluster.info["client_address"]}
    finally:
        cluster.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def remote(head):
    """This process, connected as a remote driver."""
    os.environ["MANTA_AUTH_TOKEN"] = head["token"]
    try:
        context = manta.init(head["address"])
        yield context
        manta.shutdown()
    finally:
        os.environ.pop("MANTA_AUTH_TOKEN", None)


@manta.remote
def double(x: Any) -> Any:
    return x * 2


@manta.remote
class Counter:
    def __init__(self, start: int = 0) -> None:
        self.n = start

    def add(self, k: int = 1) -> int:
        self.n += k
        return self.n


def test_tasks_actors_and_nested_refs(remote) -> None:
    assert manta.get(double.remote(21)) == 42
    assert manta.get([double.remote(i) for i in range(20)]) == [2 * i for i in range(20)]
    counter = Counter.remote(10)
    assert manta.get([counter.add.remote() for _ in range(5)]) == [11, 12, 13, 14, 15]

    @manta.remote
    def make() -> list[Any]:
        return [manta.put("inner")]

    @manta.remote
    def read(refs: list[Any]) -> Any:
        return manta.get(refs[0])

    nested = manta.get(make.remote())
    assert isinstance(nested[0], manta.ObjectRef) and manta.get(nested[0]) == "inner"
    assert manta.get(read.remote(nested)) == "inner"  # a ref this process got, passed back in
    assert manta.get(double.remote(manta.put(4))) == 8
    ready, pending = manta.wait([double.remote(1), double.remote(2)], num_returns=2, timeout=30)
    assert len(ready) == 2 and not pending


def test_named_detached_and_async_actors(remote) -> None:
    Counter.options(name="kept", lifetime="detached").remote(100)
    again = manta.get_actor("kept")
    assert manta.get(again.add.remote(5)) == 105
    assert "kept" in manta.util.list_named_actors()

    @manta.remote
    class Waiter:
        async def twice(self, x: int) -> int:
            return 2 * x

    waiter = Waiter.remote()
    assert manta.get([waiter.twice.remote(i) for i in range(5)]) == [0, 2, 4, 6, 8]
    manta.kill(again)


def test_100mb_arrays_both_ways(remote) -> None:
    array = np.arange(100 * 2**20 // 8, dtype=np.float64)
    ref = manta.put(array)

    @manta.remote
    def total(a: np.ndarray) -> float:
        return float(a.sum())

    @manta.remote
    def make(n: int) -> np.ndarray:
        return np.full(n, 3, dtype=np.uint8)

    assert manta.get(total.remote(ref)) == float(array.sum())
    back = manta.get(ref)
    assert back.shape == array.shape and back[-1] == array[-1]
    made = manta.get(make.remote(100 * 2**20))
    assert made.nbytes == 100 * 2**20 and made[0] == 3 and made[-1] == 3


def test_errors_carry_the_remote_traceback(remote) -> None:
    @manta.remote
    def fails() -> None:
        raise KeyError("no such thing")

    with pytest.raises(KeyError) as info:
        manta.get(fails.remote())
    assert isinstance(info.value, RayTaskError)
    assert 'raise KeyError("no such thing")' in str(info.value)


def test_streaming_generator(remote) -> None:
    @manta.remote(num_returns="streaming")
    def count(n: int) -> Any:
        yield from range(n)
        raise ValueError("after the items")

    gen = count.remote(3)
    ready, _ = manta.wait([gen], timeout=30)
    assert ready == [gen]
    assert [manta.get(next(gen)) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="after the items"):
        manta.get(next(gen))
    with pytest.raises(StopIteration):
        next(gen)


def test_placement_group_and_runtime_context(remote) -> None:
    group = placement_group([{"CPU": 1}], strategy="PACK")
    manta.get(group.ready(), timeout=30)

    @manta.remote(num_cpus=1)
    def where() -> str:
        return manta.get_runtime_context().get_placement_group_id() or ""

    strategy = PlacementGroupSchedulingStrategy(group)
    assert manta.get(where.options(scheduling_strategy=strategy).remote()) == group.id.hex()
    remove_placement_group(group)
    context = manta.get_runtime_context()
    assert len(context.get_job_id()) == 8 and len(context.get_node_id()) == 56
    assert context.namespace


def test_a_local_working_dir_is_uploaded(remote, tmp_path) -> None:
    (tmp_path / "laptop_module.py").write_text("VALUE = 'from the laptop'\n")

    @manta.remote(runtime_env={"working_dir": str(tmp_path)})
    def read() -> str:
        import laptop_module  # type: ignore[import-not-found]

        return str(laptop_module.VALUE)

    assert manta.get(read.remote()) == "from the laptop"


def test_values_of_a_module_the_head_lacks_pass_through_it(remote, tmp_path, monkeypatch) -> None:
    """The session on the head passes values on unread: a class that only this process and
    the task's working_dir have crosses it as arguments, results, puts, actor state and
    errors (the head has no ``laptop_types`` to import)."""
    (tmp_path / "laptop_types.py").write_text(
        "class Point:\n    def __init__(self, x):\n        self.x = x\nclass Oops(Exception):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import laptop_types  # type: ignore[import-not-found]

    env = {"working_dir": str(tmp_path)}

    @manta.remote(runtime_env=env)
    def moved(point: Any, by: int) -> Any:
        return laptop_types.Point(point.x + by)

    @manta.remote(runtime_env=env)
    def fail() -> None:
        raise laptop_types.Oops("raised on the cluster")

    @manta.remote(runtime_env=env)
    class Keeper:
        def __init__(self, point: Any) -> None:
            self.point = point

        def get(self) -> Any:
            return self.point

    assert manta.get(moved.remote(laptop_types.Point(1), by=2)).x == 3
    big = laptop_types.Point(np.arange(300_000))  # past the inline size: put before the task
    assert int(manta.get(moved.remote(big, 1)).x[-1]) == 300_000
    assert manta.get(manta.put(laptop_types.Point(7))).x == 7
    assert manta.get(Keeper.remote(laptop_types.Point(5)).get.remote()).x == 5
    with pytest.raises(laptop_types.Oops, match="raised on the cluster"):
        manta.get(fail.remote())


def test_refs_inside_a_result_stay_alive_after_the_result_goes(remote) -> None:
    """Refs found in a value this process loaded are held for it (borrowed from their
    owner when that is not the session): they outlive the value that carried them."""

    @manta.remote
    class Maker:
        def make(self) -> list[Any]:
            # Both owned by the actor; only the outer one is lent with the result.
            return [manta.put([manta.put(np.full(300_000, 4, dtype=np.uint8))])]

    from manta.util.state import list_objects

    maker = Maker.remote()
    wrapper = manta.get(maker.make.remote())
    outer = wrapper[0].hex()
    inner = manta.get(wrapper[0])[0]  # found in a value the session never loaded
    del wrapper  # the outer object goes: only this process's hold keeps the inner one
    wait_until(lambda: all(o.object_id != outer for o in list_objects()), what="the outer object freed")
    manta.get(maker.make.remote())  # the actor's next put applies the release
    own = manta.get(double.remote([manta.put(21)]))  # a ref the session owns, twice over
    assert len(own) == 2
    assert int(manta.get(inner, timeout=30)[0]) == 4
    assert manta.get(own[1]) == 21


def test_worker_output_reaches_this_terminal(remote, capfd) -> None:
    @manta.remote
    def speak() -> None:
        print("said on the cluster")

    manta.get(speak.remote())
    seen = ""

    def printed() -> bool:
        nonlocal seen
        seen += capfd.readouterr().out
        return "said on the cluster" in seen

    wait_until(printed, what="the worker's line printed here")


def test_state_api_and_dropped_refs(remote) -> None:
    from manta.util.state import list_actors, list_objects

    counter = Counter.remote()
    manta.get(counter.add.remote())
    actor_id = counter._actor_id.hex()
    assert any(a.actor_id == actor_id for a in list_actors())
    ref = manta.put(np.zeros(2 * 2**20, dtype=np.uint8))
    object_id = ref.hex()
    assert any(o.object_id == object_id for o in list_objects())
    del ref  # the session holds it only while this process does
    wait_until(lambda: all(o.object_id != object_id for o in list_objects()), what="the object freed")


def test_results_dropped_unread_are_freed(remote) -> None:
    from manta.util.state import list_objects

    @manta.remote
    def big(i: int) -> np.ndarray:
        return np.full(300_000, i, dtype=np.uint8)  # past the inline size: in the store

    ids = []
    for i in range(10):
        ids.append(big.remote(i).hex())  # the ref goes at once: its release follows the submission
    kept = big.remote(99)
    assert manta.get(kept)[0] == 99
    wait_until(lambda: not {o.object_id for o in list_objects()} & set(ids), what="the unread results freed")


# -- drivers that lose their connection ----------------------------------------------------


def run_script(head: dict[str, Any], port: int, code: str) -> subprocess.Popen[str]:
    env = dict(os.environ, MANTA_AUTH_TOKEN=head["token"])
    prelude = f"import manta, sys\nmanta.init('manta://127.0.0.1:{port}')\n"
    return subprocess.Popen(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


SURVIVOR = """
@manta.remote
class Counter:
    def __init__(self):
        self.n = 0
    def add(self):
        self.n += 1
        return self.n

counter = Counter.remote()
kept = manta.put(list(range(1000)))
print("ready", manta.get(counter.add.remote()), flush=True)
sys.stdin.readline()  # the test cuts the connection meanwhile
print("after", manta.get(counter.add.remote()), sum(manta.get(kept)), flush=True)
"""


def outage(proxy: TcpProxy, how: str, seconds: float) -> None:
    """The link goes away for ``seconds``: reset (``cut``) or silently (``freeze``)."""
    (proxy.cut if how == "reset" else proxy.freeze)()
    time.sleep(seconds)
    (proxy.restore if how == "reset" else proxy.thaw)()


@pytest.mark.parametrize("how", ["reset", "silent"])
def test_a_connection_lost_for_5_s_is_survived(head, how) -> None:
    proxy = TcpProxy("127.0.0.1", head["port"])
    proc = run_script(head, proxy.port, SURVIVOR)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().split() == ["ready", "1"]
        outage(proxy, how, 5)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=60)
        assert out.split() == ["after", "2", str(sum(range(1000)))], err
        assert proc.returncode == 0, err
        assert "reconnected to the cluster" in err  # silent: each side gave up on it after 3 beats
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
        proxy.close()


@pytest.mark.parametrize("how", ["reset", "silent"])
def test_a_connection_lost_past_the_grace_period_ends_the_session(head, how) -> None:
    proxy = TcpProxy("127.0.0.1", head["port"])
    code = """
    @manta.remote
    class Keeper:
        def ping(self):
            return manta.get_runtime_context().get_actor_id()

    keeper = Keeper.remote()
    print(manta.get(keeper.ping.remote()), flush=True)
    sys.stdin.readline()
    try:
        manta.get(keeper.ping.remote())
    except ConnectionError as e:
        print("ERROR", e, flush=True)
    """
    proc = run_script(head, proxy.port, code)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        actor_id = proc.stdout.readline().strip()
        outage(proxy, how, GRACE_S + 3 + (3 * BEAT_S if how == "silent" else 0))
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=60)
        assert out.startswith("ERROR"), err
        assert "session" in out and ("gone" in out or "ended" in out), out
        from manta.util.state import get_actor

        gcs = head["cluster"].info["gcs_address"]
        wait_until(lambda: get_actor(actor_id, address=gcs).state == "DEAD", what="the session's actor dead")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
        proxy.close()


def sessions_of(head: dict[str, Any]) -> list[psutil.Process]:
    dashboard = psutil.Process(head["cluster"].procs["dashboard"].pid)
    return [p for p in dashboard.children() if "manta._private.client" in " ".join(p.cmdline())]


def test_a_client_that_vanishes_mid_put_leaves_nothing_behind(head) -> None:
    before = {p.pid for p in sessions_of(head)}
    code = """
    import numpy as np
    print("ready", flush=True)
    manta.put(np.ones(400 * 2**20, dtype=np.uint8))
    print("put done", flush=True)
    """
    proc = run_script(head, head["port"], code)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        new = wait_until(lambda: [p for p in sessions_of(head) if p.pid not in before], what="its session")
        session = new[0]
        start_rss = session.memory_info().rss
        # Mid-put: the session has taken in the first 100 MB of the parts, not all of them.
        wait_until(lambda: session.memory_info().rss > start_rss + (100 << 20), what="parts arriving")
    finally:
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
    assert "put done" not in out  # killed mid-put
    # The session waits out its grace period for the client, then ends, and its job with it.
    psutil.wait_procs(new, timeout=GRACE_S + 20)
    assert all(not p.is_running() for p in new)


# -- bad input ------------------------------------------------------------------------------


def script_result(head: dict[str, Any], code: str, token: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MANTA_AUTH_TOKEN=token)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=60
    )


def test_wrong_and_read_only_tokens_are_refused(head) -> None:
    code = f"""
    import manta
    try:
        manta.init({head["address"]!r})
    except Exception as e:
        print(type(e).__name__, e)
    """
    wrong = script_result(head, code, "not-the-token")
    assert wrong.stdout.startswith(AuthenticationError.__name__), wrong.stderr
    from manta._private.api.gcs_client import GcsClient
    from manta._private.rpc.messages import IssueToken

    gcs = GcsClient(head["cluster"].info["gcs_address"], head["token"].encode())
    try:
        issued = gcs.call(IssueToken("read", "reader", ""))
    finally:
        gcs.close()
    reader = script_result(head, code, issued["token"])
    assert reader.stdout.startswith(PermissionDeniedError.__name__), reader.stderr
    assert "'submit' role" in reader.stdout and "'read'" in reader.stdout


def test_a_client_of_another_version_is_refused_with_both_versions_named(head) -> None:
    from manta._private.common.config import PROTOCOL_VERSION
    from manta._private.rpc import codec
    from manta._private.rpc.messages import Hello

    hello = codec.encode([0, 0, Hello(PROTOCOL_VERSION, "0.0.1", head["token"].encode(), "client", b"", {})])
    with socket.create_connection(("127.0.0.1", head["port"]), timeout=10) as sock:
        sock.sendall(len(hello).to_bytes(4, "big") + hello)
        size = int.from_bytes(sock.recv(4), "big")
        data = b""
        while len(data) < size:
            data += sock.recv(size - len(data))
    kind, _, body = codec.decode(data)
    assert kind == 2 and body[0] == "VersionMismatchError"
    assert "0.0.1" in body[1] and manta.__version__ in body[1]


def test_init_arguments_that_make_no_sense_remotely_are_refused(head) -> None:
    code = f"""
    import manta
    try:
        manta.init({head["address"]!r}, num_cpus=4)
    except ValueError as e:
        print("ValueError", e)
    try:
        manta.init("manta://")
    except ValueError as e:
        print("ValueError", e)
    """
    result = script_result(head, code, head["token"])
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ValueError") and "num_cpus" in lines[0], result.stderr
    assert lines[1].startswith("ValueError") and "names no host" in lines[1]


def test_a_ray_program_connects_with_ray_client_address(head, tmp_path) -> None:
    script = tmp_path / "ray_program.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import ray

            ray.init("ray://127.0.0.1:{head["port"]}")

            @ray.remote
            def square(x):
                return x * x

            print(sum(ray.get([square.remote(i) for i in range(10)])), ray.is_initialized())
            ray.shutdown()
            """
        )
    )
    env = dict(os.environ, MANTA_AUTH_TOKEN=head["token"])
    ran = subprocess.run(
        [sys.executable, "-m", "manta.compat.run_as_ray", str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert ran.stdout.split() == ["285", "True"], ran.stderr


def test_manta_status_through_the_client_port(head) -> None:
    env = dict(os.environ, MANTA_AUTH_TOKEN=head["token"])
    shown = subprocess.run(
        [sys.executable, "-m", "manta.cli.main", "status", "--address", head["address"], "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert len(report["nodes"]) == 1 and report["nodes"][0]["alive"]
    assert report["nodes"][0]["total"]["CPU"] == 2
