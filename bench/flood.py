"""A legitimate client during a flood on the gcs's TCP port: its call latency and the gcs's
memory, with no flood, and while a second process keeps 300 silent connections open and
hammers the port with wrong tokens.

    python bench/flood.py [--seconds S]

The client is a driver on this host (it talks to the gcs over the Unix socket, as local
drivers and node daemons do) and, separately, a task round trip through the whole stack.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

FLOODER = r"""
import asyncio, socket, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
silent = [socket.create_connection((host, port)) for _ in range(300)]

async def hammer(stop):
    from manta._private.rpc.transport import Dispatcher
    from manta._private.rpc.endpoints import connect
    n = 0
    while time.monotonic() < stop:
        try:
            await connect(f"{host}:{port}", b"wrong", Dispatcher(), kind="cli", max_frame_bytes=1 << 16, timeout=2)
        except Exception:
            n += 1
    return n

async def main():
    stop = time.monotonic() + seconds
    counts = await asyncio.gather(*(hammer(stop) for _ in range(8)))
    print(sum(counts))

asyncio.run(main())
for s in silent:
    s.close()
"""


def percentiles(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "p50_ms": round(statistics.median(samples) * 1000, 3),
        "p99_ms": round(samples[int(len(samples) * 0.99) - 1] * 1000, 3),
        "max_ms": round(samples[-1] * 1000, 3),
    }


def measure(seconds: float) -> dict[str, float]:
    import manta
    from manta._private.api.context import current_worker
    from manta._private.rpc import messages as m

    @manta.remote
    def echo(x: int) -> int:
        return x

    worker = current_worker()
    assert worker is not None
    gcs, tasks = [], []
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        t0 = time.perf_counter()
        worker.call_gcs(m.GetNodes())
        gcs.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        manta.get(echo.remote(1))
        tasks.append(time.perf_counter() - t0)
    return {
        **{f"gcs_call_{k}": v for k, v in percentiles(gcs).items()},
        **{f"task_{k}": v for k, v in percentiles(tasks).items()},
        "calls": len(gcs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    import psutil

    import manta

    ctx = manta.init(num_cpus=2)
    with open(os.path.join(ctx["session_dir"], "address.json")) as f:
        info = json.load(f)
    host, port = info["gcs_address"].rsplit(":", 1)
    gcs = psutil.Process(info["pids"]["gcs"])
    measure(1.0)  # warm up
    quiet = measure(args.seconds)
    quiet["gcs_rss_mb"] = round(gcs.memory_info().rss / 2**20, 1)
    flooder = subprocess.Popen(
        [sys.executable, "-c", FLOODER, host, port, str(args.seconds + 2)], stdout=subprocess.PIPE, text=True
    )
    time.sleep(1.0)  # the flood is on
    flooded = measure(args.seconds)
    flooded["gcs_rss_mb"] = round(gcs.memory_info().rss / 2**20, 1)
    out, _ = flooder.communicate(timeout=60)
    flooded["refused_handshakes"] = int(out.strip() or 0)
    manta.shutdown()
    print(f"{'metric':<22}{'no flood':>12}{'flood':>12}")
    for key in quiet:
        print(f"{key:<22}{quiet[key]:>12}{flooded[key]:>12}")
    print(f"{'refused_handshakes':<22}{'':>12}{flooded['refused_handshakes']:>12}")


if __name__ == "__main__":
    main()
