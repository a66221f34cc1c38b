"""Chaos: a workload of tasks, actors and 100 MB objects on a head and three worker
nodes while a random worker node is SIGKILLed and a fresh one added every ~20 s. Every
result must come out exactly right.

Long (MANTA_CHAOS_SECONDS, default 120), so outside the default run: `.ci/run` runs it
with `python -m pytest -m chaos tests/chaos`.
"""

from __future__ import annotations

import os
import random
import threading
import time

import numpy as np
import pytest

import manta
from manta.cluster_utils import Cluster

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]

SECONDS = float(os.environ.get("MANTA_CHAOS_SECONDS", "120"))
KILL_EVERY_S = 20.0
MB100 = 100 * 1000 * 1000
NODE = {"num_cpus": 1, "resources": {"w": 1}, "object_store_memory": 700 * 1024 * 1024}
FAST = {"node_timeout_s": 2.0, "heartbeat_interval_s": 0.3}


@manta.remote(resources={"w": 0.5}, max_retries=-1)
def make(seed: int) -> np.ndarray:
    # 100 MB whose every byte depends on the seed: a wrong or stale copy cannot pass.
    return (np.arange(MB100, dtype=np.uint64) * (seed + 1) % 251).astype(np.uint8)


@manta.remote(resources={"w": 0.5}, max_retries=-1, scheduling_strategy="SPREAD")
def digest(block: np.ndarray, seed: int) -> tuple[int, int]:
    return seed, int(block[::997].astype(np.int64).sum())


@manta.remote(resources={"w": 0.25}, max_restarts=-1, max_task_retries=-1)
class Scaler:
    def __init__(self, factor: int) -> None:
        self.factor = factor

    def scale(self, x: int) -> int:
        return x * self.factor


def expected_digest(seed: int) -> int:
    block = (np.arange(MB100, dtype=np.uint64) * (seed + 1) % 251).astype(np.uint8)
    return int(block[::997].astype(np.int64).sum())


def test_exact_results_while_worker_nodes_die_and_join() -> None:
    cluster = Cluster()
    stop = threading.Event()
    kills: list[float] = []
    try:
        cluster.add_node(num_cpus=1, object_store_memory=512 * 1024 * 1024, _system_config=FAST)
        for _ in range(3):
            cluster.add_node(**NODE, _system_config=FAST)
        cluster.connect()
        rng = random.Random(1234)

        def chaos() -> None:
            while not stop.wait(KILL_EVERY_S):
                victim = rng.choice(cluster.worker_nodes)
                cluster.remove_node(victim, allow_graceful=False)
                kills.append(time.monotonic())
                cluster.add_node(**NODE, _system_config=FAST)

        killer = threading.Thread(target=chaos, name="chaos-killer", daemon=True)
        killer.start()
        scalers = [Scaler.remote(f) for f in (3, 5)]
        deadline = time.monotonic() + SECONDS
        rounds = 0
        checked_digests = 0
        while time.monotonic() < deadline:
            seeds = [rounds * 2, rounds * 2 + 1]
            blocks = [make.remote(s) for s in seeds]
            digests = [digest.remote(b, s) for b, s in zip(blocks, seeds, strict=True)]
            calls = [(s, x, scalers[x % 2].scale.remote(x)) for s in seeds for x in range(s, s + 5)]
            pulled = manta.get(blocks[0], timeout=600)  # a 100 MB pull to the head
            assert int(pulled[::997].astype(np.int64).sum()) == expected_digest(seeds[0])
            del pulled
            for (seed, value), s in zip(manta.get(digests, timeout=600), seeds, strict=True):
                assert seed == s and value == expected_digest(s), f"round {rounds}: wrong digest for {s}"
                checked_digests += 1
            for _s, x, ref in calls:
                assert manta.get(ref, timeout=600) == x * (3 if x % 2 == 0 else 5)
            del blocks, digests, calls
            rounds += 1
        stop.set()
        killer.join(timeout=120)
        print(f"chaos: {rounds} rounds, {checked_digests} 100 MB digests checked, {len(kills)} nodes killed")
        assert rounds >= 3 and len(kills) >= max(1, int(SECONDS // KILL_EVERY_S) - 1)
    finally:
        stop.set()
        if manta.is_initialized():
            manta.shutdown()
        cluster.shutdown()
