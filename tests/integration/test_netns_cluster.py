"""The README's "Run a cluster" steps on two "hosts": network namespaces joined by a veth
pair, each with its own address (and its own MANTA_TMPDIR, as a second host would have).
Needs root for `ip netns`; skipped elsewhere. Also cuts the link to time how long the
head takes to declare the unreachable node dead."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from tests.polling import wait_until

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("ip") is None,
        reason="needs root and iproute2 for network namespaces",
    ),
]

HEAD_IP, WORKER_IP = "10.231.0.1", "10.231.0.2"


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True, timeout=30)


@pytest.fixture
def hosts(tmp_path):
    tag = str(os.getpid() % 100000)
    head_ns, worker_ns = f"mh{tag}", f"mw{tag}"
    veth_h, veth_w = f"vh{tag}", f"vw{tag}"
    sh("ip", "netns", "add", head_ns)
    sh("ip", "netns", "add", worker_ns)
    dirs = {head_ns: str(tmp_path / "head"), worker_ns: str(tmp_path / "worker")}
    try:
        sh("ip", "link", "add", veth_h, "type", "veth", "peer", "name", veth_w)
        for ns, dev, ip in ((head_ns, veth_h, HEAD_IP), (worker_ns, veth_w, WORKER_IP)):
            sh("ip", "link", "set", dev, "netns", ns)
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        yield head_ns, worker_ns, dirs, veth_w
    finally:
        pids = []
        for ns, tmpdir in dirs.items():
            for path in glob.glob(os.path.join(tmpdir, "session_*", "address.json")):
                with open(path) as f:
                    pids += json.load(f)["pids"].values()
            in_ns(ns, tmpdir, [sys.executable, "-m", "manta.cli.main", "stop"])
        wait_until(lambda: not any(psutil.pid_exists(p) for p in pids), what="every daemon to stop")
        for ns in (head_ns, worker_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def in_ns(ns: str, tmpdir: str, cmd: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "MANTA_TMPDIR": tmpdir, **env}
    return subprocess.run(
        ["ip", "netns", "exec", ns, *cmd],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=os.getcwd(),
    )


def test_the_readme_cluster_steps_across_two_network_namespaces(hosts) -> None:
    head_ns, worker_ns, dirs, worker_dev = hosts
    manta = [sys.executable, "-m", "manta.cli.main"]

    # 1. The head, on its own address, with a short node timeout for the partition below.
    head = in_ns(
        head_ns,
        dirs[head_ns],
        [*manta, "start", "--head", "--node-ip-address", HEAD_IP, "--port", "6379", "--num-cpus", "1"],
        MANTA_NODE_TIMEOUT_S="2",
        MANTA_HEARTBEAT_INTERVAL_S="0.2",
    )
    assert head.returncode == 0, head.stderr
    assert f"{HEAD_IP}:6379" in head.stdout
    [token_file] = glob.glob(os.path.join(dirs[head_ns], "session_*", "token"))
    with open(token_file) as f:
        token = f.read().strip()

    # 2. The worker host joins with the token.
    joined = in_ns(
        worker_ns,
        dirs[worker_ns],
        [
            *manta,
            "start",
            "--address",
            f"{HEAD_IP}:6379",
            "--node-ip-address",
            WORKER_IP,
            "--resources",
            '{"w": 1}',
        ],
        MANTA_AUTH_TOKEN=token,
        MANTA_HEARTBEAT_INTERVAL_S="0.2",
    )
    assert joined.returncode == 0, joined.stderr

    # 3. A driver on the head host: tasks on the worker, objects across the link both ways.
    driver = textwrap.dedent(
        """
        import json, numpy as np, manta
        manta.init(address="auto")

        @manta.remote(resources={"w": 1})
        def make():
            return manta.get_runtime_context().get_node_id(), np.arange(10_000_000, dtype=np.int64)

        @manta.remote(resources={"w": 1})
        def total(a):
            return int(a.sum())

        where, array = manta.get(make.remote())
        sent = manta.put(np.ones(20_000_000, dtype=np.uint8))
        nodes = {n["NodeID"]: n["NodeManagerAddress"] for n in manta.nodes() if n["Alive"]}
        print(json.dumps({"where": where, "sum": int(array.sum()), "sent": manta.get(total.remote(sent)),
                          "nodes": nodes, "driver": manta.get_runtime_context().get_node_id()}))
        manta.shutdown()
        """
    )
    ran = in_ns(head_ns, dirs[head_ns], [sys.executable, "-c", driver])
    assert ran.returncode == 0, ran.stderr
    out = json.loads(ran.stdout.strip().splitlines()[-1])
    assert out["nodes"][out["where"]] == WORKER_IP and out["nodes"][out["driver"]] == HEAD_IP
    assert out["sum"] == 10_000_000 * 9_999_999 // 2 and out["sent"] == 20_000_000

    status = in_ns(worker_ns, dirs[worker_ns], [*manta, "status", "--json"])
    assert status.returncode == 0, status.stderr
    assert sorted(n["address"].split(":")[0] for n in json.loads(status.stdout)["nodes"]) == [
        HEAD_IP,
        WORKER_IP,
    ]

    # A partition: the worker's link goes down, so no connection closes; the head notices
    # the silence and declares the node dead after its 2 s timeout.
    subprocess.run(["ip", "-n", worker_ns, "link", "set", worker_dev, "down"], check=True, timeout=30)
    cut = time.monotonic()

    def worker_dead() -> str:
        report = json.loads(in_ns(head_ns, dirs[head_ns], [*manta, "status", "--json"]).stdout)
        dead = [n for n in report["nodes"] if n["address"].startswith(WORKER_IP) and not n["alive"]]
        return dead[0]["death_reason"] if dead else ""

    reason = wait_until(worker_dead, timeout=30, what="the head to declare the cut-off node dead")
    print(f"partitioned node declared dead {time.monotonic() - cut:.1f} s after the cut: {reason}")
    assert "missed heartbeats" in reason
