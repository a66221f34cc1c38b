"""The node memory monitor on a real cluster: a task that eats memory is killed, retried,
and fails with OutOfMemoryError saying why; the node and other work carry on.

The cluster starts with a threshold a few hundred MB above the memory in use just before,
so the test never needs to exhaust the machine. Other processes (tests running in parallel)
move the machine's usage meanwhile, so the hog does not allocate a fixed amount: it reads
the node's memory as the monitor does and allocates until it is past the threshold (within
a cap), then holds it until it is killed.
"""

from __future__ import annotations

import os
import time

import pytest

import manta
from manta._private.node.memory_monitor import MemoryReader
from manta.exceptions import OutOfMemoryError, WorkerCrashedError

MIB = 1024 * 1024
# Room between the memory in use before the cluster starts and the threshold: the cluster
# itself (daemons, two workers, a small store) takes part of it; the hog fills the rest.
HEADROOM = 500 * MIB
# The most the hog ever allocates, should other processes free a lot of memory meanwhile.
HOG_CAP = 1536 * MIB


@pytest.fixture(scope="module")
def tight():
    """A cluster whose memory monitor threshold is just above the usage measured now."""
    usage = MemoryReader().read()
    threshold = (usage.used + HEADROOM) / usage.total
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MANTA_MEMORY_USAGE_THRESHOLD", f"{threshold:.6f}")
        env.setenv("MANTA_MEMORY_MONITOR_REFRESH_MS", "100")
        manta.init(num_cpus=2, num_gpus=0, object_store_memory=80 * MIB)
    yield threshold
    manta.shutdown()


def _count_attempt(path: str) -> None:
    with open(path, "a") as f:
        f.write("x")


def _attempts(path: str) -> int:
    with open(path) as f:
        return len(f.read())


def test_a_task_past_the_threshold_is_killed_retried_and_fails_with_out_of_memory(tight, tmp_path):
    threshold = tight
    counter = str(tmp_path / "attempts")

    @manta.remote(num_cpus=0)
    class Bystander:
        def pid(self):
            return os.getpid()

    @manta.remote(max_retries=1)
    def hog(path, threshold, cap):
        _count_attempt(path)
        reader = MemoryReader()
        held = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            usage = reader.read()
            past = usage.used >= threshold * usage.total + 32 * MIB
            if not past and len(held) * 16 * MIB < cap:
                held.append(b"\x01" * (16 * MIB))  # written, so resident, not just reserved
            time.sleep(0.02)
        return f"not killed: held {len(held) * 16} MiB"

    @manta.remote
    def one():
        return 1

    bystander = Bystander.remote()
    bystander_pid = manta.get(bystander.pid.remote(), timeout=60)
    node_id = manta.nodes()[0]["NodeID"]

    with pytest.raises(OutOfMemoryError) as info:
        manta.get(hog.remote(counter, threshold, HOG_CAP), timeout=120)
    assert _attempts(counter) == 2  # killed, retried once (max_retries=1), killed again
    error = info.value
    assert not isinstance(error, WorkerCrashedError)
    text = str(error)
    assert text.startswith("Task was killed due to the node running low on memory."), text
    assert node_id[:8] in text and "pid " in text and f"{threshold:.1%}" in text, text
    assert "MANTA_MEMORY_USAGE_THRESHOLD" in text and "num_cpus" in text, text

    # The node daemon, the actor (task workers go first) and new work carry on. Checked at
    # once: should other processes keep the node over the threshold, the monitor would take
    # the actor next, as it should, (at least a second) after its last kill.
    assert manta.nodes()[0]["Alive"]
    assert manta.get(bystander.pid.remote(), timeout=60) == bystander_pid
    assert manta.get(one.remote(), timeout=60) == 1
    manta.kill(bystander)
