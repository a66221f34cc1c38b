"""What TLS costs: cross-node task rate and a 1 GiB object pulled between two node
daemons on this machine, with TLS off and with mutual TLS on (same run, fresh processes).

    python bench/tls.py [--rounds 3] [--repeat 3] [--json OUT]

Layout as in bench/transfer.py: a head and a second node (``resources={"b": 1}``), one CPU
and a 3 GiB store each; the driver attaches to the head. Tasks pinned to the second node
reach its worker over TCP (the driver's own node is reached over a Unix socket, which
stays plain), so they pay TLS on every call; the 1 GiB pull crosses the object-transfer
port. Certificates are made fresh with ``manta._private.rpc.certs`` (ECDSA P-256).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from fresh import run_fresh  # noqa: E402

NODE = {"num_cpus": 1, "object_store_memory": 3 * 2**30}
GIB = 2**30


def _noop() -> None:
    return None


def _produce(n: int) -> Any:
    import numpy as np

    return np.ones(n, dtype=np.uint8)


def measure(rounds: int) -> dict[str, Any]:
    import manta
    from manta.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    cluster.add_node(**NODE, resources={"b": 1})
    manta.init(address=cluster.address)
    try:
        noop = manta.remote(resources={"b": 0.1})(_noop)
        produce = manta.remote(resources={"b": 0.1})(_produce)
        for _ in range(20):
            manta.get(noop.remote())
        n = 500
        t = time.perf_counter()
        for _ in range(n):
            manta.get(noop.remote())
        sync = n / (time.perf_counter() - t)
        n = 3000
        t = time.perf_counter()
        manta.get([noop.remote() for _ in range(n)])
        batch = n / (time.perf_counter() - t)
        pulls = []
        for _ in range(rounds):
            ref = produce.remote(GIB)
            manta.wait([ref], fetch_local=False)
            time.sleep(0.3)
            t = time.perf_counter()
            array = manta.get(ref)
            pulls.append(time.perf_counter() - t)
            assert array.nbytes == GIB and array[-1] == 1
            del array, ref
        pull = statistics.median(pulls)
        return {
            "tasks_sync_per_s": round(sync),
            "tasks_async_per_s": round(batch),
            "pull_1GiB_s": round(pull, 3),
            "pull_1GiB_gbps": round(GIB / pull / 1e9, 3),
        }
    finally:
        manta.shutdown()
        cluster.shutdown()


def _certs(where: str) -> dict[str, str]:
    from manta._private.rpc import certs

    ca = certs.create_ca(os.path.join(where, "ca"))
    node = certs.create_node(ca.cert, ca.key, ["127.0.0.1"], ["localhost"], os.path.join(where, "node"))
    return {"MANTA_TLS_CA": ca.cert, "MANTA_TLS_CERT": node.cert, "MANTA_TLS_KEY": node.key}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3, help="fresh runs per mode, alternating")
    parser.add_argument("--json", default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.rounds)))
        return
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as where:
        tls_env = _certs(where)
        # Alternated, so the machine's drift over the run falls on both alike.
        for mode, extra in [("off", {}), ("on", tls_env)] * args.repeat:
            saved = {k: os.environ.get(k) for k in tls_env}
            os.environ.update(extra)
            try:
                code, out, err, left = run_fresh(
                    [sys.executable, __file__, "--child", "--rounds", str(args.rounds)], "manta", 900
                )
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
            if code != 0:
                raise SystemExit(f"TLS {mode}: exit {code}\n{err[-3000:]}")
            runs[mode].append(json.loads(out.strip().splitlines()[-1]))
            if left:
                print(f"TLS {mode}: left behind {left}", file=sys.stderr)
    keys = ("tasks_sync_per_s", "tasks_async_per_s", "pull_1GiB_s", "pull_1GiB_gbps")
    results = {mode: {k: statistics.median(r[k] for r in rs) for k in keys} for mode, rs in runs.items()}
    print(f"medians of {args.repeat} alternating runs per mode")
    print(f"{'':24}{'TLS off':>12}{'TLS on':>12}{'on/off':>9}")
    for key in keys:
        off, on = results["off"][key], results["on"][key]
        print(f"{key:24}{off:>12}{on:>12}{on / off:>9.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"medians": results, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
