"""The autoscaler with the ``local`` provider, end to end: a head with no CPUs of its own
(``manta start --head --autoscaling-config``), a workload that needs three more nodes gets
them and finishes with exact results, and the nodes go again once idle."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.polling import wait_until

IDLE_S = 6


def manta_cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "manta.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


_CONFIG = f"""
cluster_name: test
max_workers: 3
idle_timeout_minutes: {IDLE_S / 60}
head_node_type: head
available_node_types:
  head:
    resources: {{CPU: 0}}
  one-cpu:
    resources: {{CPU: 1}}
    labels: {{pool: autoscaled}}
    max_workers: 3
    node_config: {{object_store_memory: 100000000}}
"""


def start_head(
    tmp_path: Path, config_text: str, join_timeout_s: float = 60
) -> tuple[dict[str, str], subprocess.CompletedProcess[str]]:
    """``manta start --head`` with no CPUs and this autoscaling config, in a directory of its own."""
    config = tmp_path / "autoscaling.yaml"
    config.write_text(config_text)
    env = dict(
        os.environ,
        MANTA_TMPDIR=str(tmp_path / "head"),
        MANTA_AUTOSCALER_UPDATE_INTERVAL_S="1",
        MANTA_AUTOSCALER_JOIN_TIMEOUT_S=str(join_timeout_s),
    )
    started = manta_cli(
        env,
        "start",
        "--head",
        "--port",
        "0",
        "--num-cpus",
        "0",
        "--no-include-dashboard",
        "--object-store-memory",
        "100000000",
        "--autoscaling-config",
        str(config),
    )
    return env, started


@pytest.fixture
def head(tmp_path: Path):
    env, started = start_head(tmp_path, _CONFIG)
    assert started.returncode == 0, started.stderr
    try:
        yield env
    finally:
        stopped = manta_cli(env, "stop")
        assert stopped.returncode == 0, stopped.stderr


def status(env: dict[str, str]) -> dict[str, Any]:
    shown = manta_cli(env, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)  # type: ignore[no-any-return]


_WORKLOAD = """
import os, sys, manta
manta.init()

@manta.remote(num_cpus=1)
class Summer:
    def total(self, n):
        return sum(range(n)), manta.get_runtime_context().get_node_id()

summers = [Summer.remote() for _ in range(3)]
results = manta.get([s.total.remote(10_000 * (i + 1)) for i, s in enumerate(summers)])
print("RESULTS", [r[0] for r in results], len({r[1] for r in results}))
"""


def test_demand_launches_nodes_and_idle_ones_go(head: dict[str, str]) -> None:
    run = subprocess.run(
        [sys.executable, "-c", _WORKLOAD], env=head, capture_output=True, text=True, timeout=180
    )
    assert run.returncode == 0, run.stderr
    # Three actors of one CPU, on a head with none: three nodes, one for each.
    assert "RESULTS [49995000, 199990000, 449985000] 3" in run.stdout, run.stdout + run.stderr
    seen = status(head)
    launched = [n for n in seen["nodes"] if n["labels"].get("manta.io/node-type") == "one-cpu"]
    assert len(launched) == 3 and all(n["labels"]["pool"] == "autoscaled" for n in launched)

    # The driver has exited: its actors are gone, the nodes idle, and removed after the timeout.
    def removed() -> bool:
        now = status(head)
        scaler = now["autoscaler"]
        return all(not n["alive"] for n in now["nodes"] if not n["head"]) and not scaler["nodes"]

    wait_until(removed, timeout=IDLE_S + 60, what="the idle nodes removed")
    ended = status(head)["autoscaler"]
    assert len(ended["terminated"]) == 3 and all("idle for" in line for line in ended["terminated"])
    assert not ended["launching"] and not ended["errors"]


def test_demand_no_node_type_can_hold_is_reported_and_not_launched_for(head: dict[str, str]) -> None:
    waiting = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import manta; manta.init(); manta.get(manta.remote(num_gpus=8)(abs).remote(1))",
        ],
        env=head,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: (
                "cannot place {CPU: 1, GPU: 8}: no node type has it"
                in status(head)["autoscaler"]["unplaceable"]
            ),
            timeout=60,
            what="the demand reported as unplaceable",
        )
        assert not status(head)["autoscaler"]["launching"]
    finally:
        waiting.kill()
        waiting.wait()


def test_a_config_it_cannot_use_fails_the_start_and_leaves_nothing_running(tmp_path: Path) -> None:
    env, started = start_head(
        tmp_path,
        "available_node_types:\n  w:\n    resources: {CPU: 1}\n    min_workers: 2\n    max_workers: 1\n",
    )
    assert started.returncode != 0
    assert "min_workers 2 above its max_workers 1" in started.stderr
    assert "no Manta node" in manta_cli(env, "stop").stdout  # the head's daemons were stopped too
    joined = manta_cli(env, "start", "--address", "127.0.0.1:1", "--autoscaling-config", "x.yaml")
    assert joined.returncode == 2 and "--autoscaling-config is for the head" in joined.stderr


def test_nodes_that_cannot_start_are_retried_with_growing_waits_and_reported(tmp_path: Path) -> None:
    env, started = start_head(
        tmp_path,
        "available_node_types:\n"
        "  broken:\n"
        "    resources: {CPU: 1}\n"
        "    min_workers: 1\n"
        "    max_workers: 1\n"
        "    node_config: {object_store_memory: 1}\n",  # too small a store: the node refuses to start
    )
    assert started.returncode == 0, started.stderr
    try:
        wait_until(
            lambda: len(status(env)["autoscaler"]["errors"]) >= 2, timeout=60, what="two failed launches"
        )
        errors = status(env)["autoscaler"]["errors"]
        assert "exited before it joined" in errors[0] and "launching broken again in 5 s" in errors[0]
        assert "again in 10 s" in errors[1]
        logs = list((tmp_path / "head").glob("session_*/logs/autoscaler-node-*.log"))
        assert len(logs) == 2  # waited between the tries, not relaunched every round
    finally:
        assert manta_cli(env, "stop").returncode == 0


def test_a_task_with_a_label_selector_gets_a_node_of_the_type_with_those_labels(tmp_path: Path) -> None:
    env, started = start_head(
        tmp_path,
        "max_workers: 2\n"
        "available_node_types:\n"
        "  plain: {resources: {CPU: 1}, max_workers: 1}\n"  # first by name, and as big
        "  zoned: {resources: {CPU: 1}, labels: {zone: b}, max_workers: 1}\n",
    )
    assert started.returncode == 0, started.stderr
    code = (
        "import manta; manta.init()\n"
        "f = manta.remote(lambda: manta.get_runtime_context().get_node_id())\n"
        "print('NODE', manta.get(f.options(label_selector={'zone': 'b'}).remote()))\n"
    )
    try:
        run = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 0, run.stderr
        node_id = run.stdout.split("NODE ")[1].strip()
        [node] = [n for n in status(env)["nodes"] if n["node_id"] == node_id]
        assert node["labels"]["zone"] == "b" and node["labels"]["manta.io/node-type"] == "zoned"
        assert not any(n["labels"].get("manta.io/node-type") == "plain" for n in status(env)["nodes"])
    finally:
        assert manta_cli(env, "stop").returncode == 0


def test_a_node_that_never_joins_is_terminated_after_the_join_timeout_and_reported(tmp_path: Path) -> None:
    config = "available_node_types:\n  w: {resources: {CPU: 1}, min_workers: 1, max_workers: 1}\n"
    env, started = start_head(tmp_path, config, join_timeout_s=3)
    assert started.returncode == 0, started.stderr
    frozen: list[int] = []
    try:
        # The first node launched is frozen before it can join (its process is still starting).
        [record_file] = wait_until(
            lambda: list((tmp_path / "head").glob("session_*/autoscaler/launched.json")), what="a launch"
        )
        pid = wait_until(lambda: next(iter(json.loads(record_file.read_text()).values()), {}).get("pid"))
        os.kill(pid, signal.SIGSTOP)
        frozen.append(pid)

        def outcome() -> str | None:
            shown = status(env)["autoscaler"]
            if any("never joined (join timeout 3 s)" in line for line in shown["terminated"]):
                return "terminated"
            return "joined" if shown["nodes"] else None

        if wait_until(outcome, timeout=60, what="the frozen node terminated") == "joined":
            # On a loaded machine the node can start and join before the test freezes it.
            pytest.skip("the node joined before it could be frozen: no node that never joins to test")
        wait_until(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", timeout=30)
        # Its replacement (min_workers) joins.
        wait_until(lambda: len(status(env)["autoscaler"]["nodes"]) == 1, timeout=60, what="a node that joins")
    finally:
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert manta_cli(env, "stop").returncode == 0
