"""A remote driver on a "laptop" that can reach only the head's client port: the README's
quick start and actor example run there unchanged, against a head and a worker node on
another "host". Network namespaces joined by a veth pair; the cluster's own ports listen
on an address the laptop has no route to. Needs root for `ip netns`; skipped elsewhere."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

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

# The cluster's own address (on the head host's loopback: no route to it from the
# laptop), and the link between the head host and the laptop.
CLUSTER_IP, HEAD_IP, LAPTOP_IP = "10.234.0.1", "10.233.0.1", "10.233.0.2"
README = Path(__file__).resolve().parents[2] / "README.md"


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True, timeout=30)


def in_ns(ns: str, tmpdir: str, cmd: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "MANTA_TMPDIR": tmpdir, **env}
    return subprocess.run(
        ["ip", "netns", "exec", ns, *cmd], env=full, capture_output=True, text=True, timeout=180
    )


@pytest.fixture
def hosts(tmp_path):
    tag = str(os.getpid() % 100000)
    head_ns, laptop_ns = f"rh{tag}", f"rl{tag}"
    dirs = {name: str(tmp_path / name) for name in ("head", "worker", "laptop")}
    try:
        sh("ip", "netns", "add", head_ns)
        sh("ip", "netns", "add", laptop_ns)
        sh("ip", "link", "add", f"vrh{tag}", "type", "veth", "peer", "name", f"vrl{tag}")
        for ns, dev, ip in ((head_ns, f"vrh{tag}", HEAD_IP), (laptop_ns, f"vrl{tag}", LAPTOP_IP)):
            sh("ip", "link", "set", dev, "netns", ns)
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", head_ns, "addr", "add", f"{CLUSTER_IP}/32", "dev", "lo")
        yield head_ns, laptop_ns, dirs
    finally:
        pids = []
        for name in ("worker", "head"):
            for path in glob.glob(os.path.join(dirs[name], "session_*", "address.json")):
                pids += json.loads(Path(path).read_text())["pids"].values()
            in_ns(head_ns, dirs[name], [sys.executable, "-m", "manta.cli.main", "stop"])
        try:
            wait_until(lambda: not any(psutil.pid_exists(p) for p in pids), what="every daemon to stop")
        finally:
            for ns in (head_ns, laptop_ns):
                subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def readme_quick_start() -> str:
    """The README's quick start: its first three Python blocks (the task, more of the core
    API, the actor), as a user would paste them."""
    text = README.read_text()
    section = text[text.index("## Quick start") : text.index("### Generators")]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 3, "the quick start's blocks changed: update this test"
    return "\n".join(blocks)


def test_the_readme_runs_unchanged_on_a_laptop_that_reaches_only_the_client_port(hosts) -> None:
    head_ns, laptop_ns, dirs = hosts
    manta = [sys.executable, "-m", "manta.cli.main"]
    head = in_ns(
        head_ns,
        dirs["head"],
        [
            *manta,
            "start",
            "--head",
            "--node-ip-address",
            CLUSTER_IP,
            "--port",
            "6379",
            "--num-cpus",
            "2",
            "--dashboard-host",
            HEAD_IP,
            "--client-port",
            "10001",
        ],
    )
    assert head.returncode == 0, head.stderr
    assert f'manta.init("manta://{HEAD_IP}:10001")' in head.stdout
    token = Path(glob.glob(os.path.join(dirs["head"], "session_*", "token"))[0]).read_text().strip()
    worker = in_ns(
        head_ns,
        dirs["worker"],
        [
            *manta,
            "start",
            "--address",
            f"{CLUSTER_IP}:6379",
            "--node-ip-address",
            CLUSTER_IP,
            "--resources",
            '{"w": 1}',
            "--num-cpus",
            "1",
        ],
        MANTA_AUTH_TOKEN=token,
    )
    assert worker.returncode == 0, worker.stderr

    laptop_env = {"MANTA_ADDRESS": f"manta://{HEAD_IP}:10001", "MANTA_AUTH_TOKEN": token}
    # The laptop cannot reach the cluster's own ports at all.
    probe = in_ns(
        laptop_ns,
        dirs["laptop"],
        [sys.executable, "-c", f"import socket; socket.create_connection(({CLUSTER_IP!r}, 6379), timeout=3)"],
    )
    assert probe.returncode != 0 and ("unreachable" in probe.stderr or "timed out" in probe.stderr), (
        probe.stderr
    )

    quick_start = in_ns(laptop_ns, dirs["laptop"], [sys.executable, "-c", readme_quick_start()], **laptop_env)
    assert quick_start.returncode == 0, quick_start.stderr

    # And it uses the whole cluster: a task on the other node, 100 MB both ways.
    more = textwrap.dedent(
        """
        import numpy as np, manta
        manta.init()

        @manta.remote(resources={"w": 1})
        def total(a):
            return int(a.sum()), manta.get_runtime_context().get_node_id()

        s, where = manta.get(total.remote(manta.put(np.ones(100 * 2**20, dtype=np.uint8))))
        back = manta.get(manta.put(np.full(100 * 2**20, 7, dtype=np.uint8)))
        print(s, where, int(back[-1]), manta.get_runtime_context().get_node_id())
        """
    )
    ran = in_ns(laptop_ns, dirs["laptop"], [sys.executable, "-c", more], **laptop_env)
    assert ran.returncode == 0, ran.stderr
    total, task_node, last, driver_node = ran.stdout.split()
    assert int(total) == 100 * 2**20 and int(last) == 7
    assert task_node != driver_node  # ran on the worker node; the session lives on the head
    assert not glob.glob(os.path.join(dirs["laptop"], "session_*"))  # no Manta node on the laptop
