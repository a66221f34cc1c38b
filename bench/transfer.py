"""Objects across nodes: Manta beside Ray on two node daemons on this machine.

    python bench/transfer.py [--framework manta|ray|both] [--rounds 3] [--json OUT]
                             [--ray-python PATH] [--no-tcp]

Both frameworks get the same layout from their ``cluster_utils.Cluster``: a head node and a
second node (``resources={"b": 1}``), one CPU and a 3 GiB object store each; the driver
attaches to the head. For 100 MiB and 1 GiB, ``--rounds`` times with a fresh object each
round (the table shows the median):

    pull   a task on the second node returns ``np.ones(n, uint8)``; once ``wait(...,
           fetch_local=False)`` says it is done, time the driver's ``get``, which copies
           it from the second node's store into the head's
    push   the driver ``put``s an array (not timed), then time from submitting a task on the
           second node that takes it to that task's result; a no-op task's round trip to
           the same node (median of 20) is subtracted, leaving the argument's transfer

and, unless ``--no-tcp``, the machine's ceiling for the same bytes: one Python process
``sendall``-ing to another over one loopback TCP connection into ``recv_into``.

Each framework runs in a fresh process (Manta in ``sys.executable``, Ray in
``--ray-python``) that prints one JSON line. After each one, processes still left in its
session are reported and killed by pid (after Ray, daemons this run started, by pid too).
"""

from __future__ import annotations

import argparse
import importlib
import json
import mmap
import os
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from fresh import can_import_ray, kill_ray_daemons_since, ray_daemons, run_fresh  # noqa: E402

SIZES = {"100MiB": 100 * 2**20, "1GiB": 2**30}
NODE = {"num_cpus": 1, "object_store_memory": 3 * 2**30}
CHUNK = 8 * 2**20  # what Manta reads per recv_into, too
Metrics = dict[str, Any]


# -- in the child process: one framework ---------------------------------------------------------
def _start(framework: str) -> tuple[Any, Any]:
    """Import ``framework`` (this file must run under Ray's interpreter, so it never imports
    manta by name), start the two-node cluster and attach the driver to its head."""
    ray = importlib.import_module(framework)
    cluster_utils = importlib.import_module(f"{framework}.cluster_utils")
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    cluster.add_node(**NODE, resources={"b": 1})
    ray.init(address=cluster.address)
    return ray, cluster


def _produce(n: int) -> Any:
    import numpy as np

    return np.ones(n, dtype=np.uint8)


def _consume(a: Any) -> tuple[int, int]:
    return a.nbytes, int(a[-1])


def _noop() -> None:
    return None


def _pull_seconds(ray: Any, produce: Any, n: int) -> float:
    ref = produce.remote(n)
    ray.wait([ref], fetch_local=False)
    time.sleep(0.3)  # let the producing worker go idle: it shares the 2 cores with the pull
    t = time.perf_counter()
    arr = ray.get(ref)
    seconds = time.perf_counter() - t
    assert arr.nbytes == n and arr[0] == 1 and arr[-1] == 1
    return seconds


def _push_seconds(ray: Any, consume: Any, arr: Any) -> float:
    ref = ray.put(arr)  # a new object each round, so nothing is cached on the second node
    time.sleep(0.3)
    t = time.perf_counter()
    result = ray.get(consume.remote(ref))
    seconds = time.perf_counter() - t
    assert result == (arr.nbytes, 1)
    return seconds


def _summary(seconds: list[float], n: int, minus_s: float = 0.0) -> Metrics:
    median = statistics.median(seconds)
    return {
        "bytes": n,
        "seconds": [round(s, 4) for s in seconds],
        "median_s": round(median, 4),
        "gbps": round(n / max(median - minus_s, 1e-9) / 1e9, 3),
    }


def measure(framework: str, rounds: int) -> Metrics:
    import numpy as np

    ray, cluster = _start(framework)
    try:
        on_b = {"resources": {"b": 0.1}}
        produce = ray.remote(**on_b)(_produce)
        consume = ray.remote(**on_b)(_consume)
        noop = ray.remote(**on_b)(_noop)
        for _ in range(5):  # start the second node's worker and warm its code paths
            ray.get(noop.remote())
        noops = []
        for _ in range(20):
            t = time.perf_counter()
            ray.get(noop.remote())
            noops.append(time.perf_counter() - t)
        noop_s = statistics.median(noops)
        out: Metrics = {"version": ray.__version__, "noop_task_ms": round(noop_s * 1e3, 2)}
        for label, n in SIZES.items():
            out[f"pull_{label}"] = _summary([_pull_seconds(ray, produce, n) for _ in range(rounds)], n)
            arr = np.ones(n, dtype=np.uint8)
            pushes = [_push_seconds(ray, consume, arr) for _ in range(rounds)]
            out[f"push_{label}"] = {**_summary(pushes, n, noop_s), "minus_noop_ms": out["noop_task_ms"]}
            del arr
        return out
    finally:
        ray.shutdown()
        cluster.shutdown()


# -- in the child process: the TCP baseline -----------------------------------------------------
def _recv_all(conn: socket.socket, view: memoryview) -> None:
    got = 0
    while got < len(view):
        k = conn.recv_into(view[got : got + CHUNK])
        if k == 0:
            raise ConnectionError("sender closed early")
        got += k


def tcp_seconds(n: int, fresh_pages: bool) -> float:
    """One loopback TCP stream of ``n`` bytes from a forked sender, into a buffer whose pages
    were touched before (``fresh_pages=False``) or are faulted in as the bytes land."""
    import numpy as np

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    pid = os.fork()
    if pid == 0:  # the sender
        try:
            data = np.ones(n, dtype=np.uint8)
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(memoryview(data))
        finally:
            os._exit(0)
    buf = mmap.mmap(-1, n)
    if not fresh_pages:
        np.frombuffer(buf, dtype=np.uint8)[:] = 0
    conn, _ = listener.accept()
    t = time.perf_counter()
    view = memoryview(buf)
    _recv_all(conn, view)
    seconds = time.perf_counter() - t
    view.release()
    conn.close()
    listener.close()
    os.waitpid(pid, 0)
    buf.close()
    return seconds


def measure_tcp(rounds: int) -> Metrics:
    out: Metrics = {}
    for label, n in SIZES.items():
        for fresh in (False, True):
            key = f"tcp_{label}_{'fresh_pages' if fresh else 'touched_pages'}"
            out[key] = _summary([tcp_seconds(n, fresh) for _ in range(rounds)], n)
    return out


# -- the runner ---------------------------------------------------------------------------------
def run_child(python: str, what: str, rounds: int, timeout_s: float) -> Metrics:
    cmd = [python, str(Path(__file__).resolve()), "--child", what, "--rounds", str(rounds)]
    returncode, out, err, left = run_fresh(cmd, what, timeout_s)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if returncode != 0 or not lines:
        tail = (err.strip().splitlines() or ["(no stderr)"])[-1]
        result: Metrics = {"error": f"exit {returncode}: {tail}"}
    else:
        result = dict(json.loads(lines[-1]))
    result["leftover_processes"] = [f"{comm} ({pid})" for pid, comm in left]
    return result


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def table(results: dict[str, Metrics]) -> str:
    m, r = results.get("manta", {}), results.get("ray", {})
    rows = [
        "| direction | size | Manta GB/s | Ray GB/s | Manta/Ray |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    names = {"pull": "pull (driver `get` from node 2)", "push": "push (`put`, task on node 2)"}
    for direction, name in names.items():
        for label in SIZES:
            key = f"{direction}_{label}"
            a, b = m.get(key, {}).get("gbps"), r.get(key, {}).get("gbps")
            ratio = f"{a / b:.2f}x" if a and b else ""
            rows.append(f"| {name} | {label} | {_fmt(a)} | {_fmt(b)} | {ratio} |")
    a, b = m.get("noop_task_ms"), r.get("noop_task_ms")
    rows.append(f"| no-op task on node 2 (subtracted from push) | ms | {_fmt(a)} | {_fmt(b)} | |")
    tcp = results.get("tcp", {})
    if any(isinstance(v, dict) for v in tcp.values()):
        rows += ["", "| raw loopback TCP, one Python stream | size | GB/s |", "| --- | --- | ---: |"]
        for label in SIZES:
            for pages in ("touched", "fresh"):
                gbps = tcp.get(f"tcp_{label}_{pages}_pages", {}).get("gbps")
                rows.append(f"| into {pages} pages | {label} | {_fmt(gbps)} |")
    return "\n".join(rows)


def main() -> int:
    started = time.time()  # Ray daemons that start from now on are this run's
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--framework", choices=["manta", "ray", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=3, help="fresh objects per size and direction")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--ray-python", default="/tmp/rayref/bin/python")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per framework")
    parser.add_argument("--no-tcp", action="store_true", help="skip the raw loopback TCP baseline")
    parser.add_argument("--child", choices=["manta", "ray", "tcp"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        metrics = measure_tcp(args.rounds) if args.child == "tcp" else measure(args.child, args.rounds)
        print(json.dumps(metrics))
        return 0

    frameworks = ["manta", "ray"] if args.framework == "both" else [args.framework]
    if "ray" in frameworks and not can_import_ray(args.ray_python):
        print(f"skipping ray: {args.ray_python} cannot `import ray` (set --ray-python)", file=sys.stderr)
        frameworks.remove("ray")
    pythons = {"manta": sys.executable, "ray": args.ray_python, "tcp": sys.executable}
    results: dict[str, Metrics] = {}
    for what in [*frameworks, *([] if args.no_tcp else ["tcp"])]:
        results[what] = run_child(pythons[what], what, args.rounds, args.timeout)
        print(f"{what}: {json.dumps(results[what])}", file=sys.stderr, flush=True)
        if what == "ray" and ray_daemons():
            # Daemons that left the child's session would survive the kill by session above.
            print(f"WARNING ray: daemons left behind, killed by pid: {kill_ray_daemons_since(started)}")
        if results[what]["leftover_processes"]:
            print(f"WARNING {what}: killed after shutdown: {results[what]['leftover_processes']}")

    print(table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {"rounds": args.rounds, "cpus": os.cpu_count(), "sizes": SIZES}
        args.json.write_text(json.dumps({**meta, "results": results}, indent=2) + "\n")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
