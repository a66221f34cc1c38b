"""Estimate pi by throwing darts, fanned out over tasks on a local Manta cluster.

    python examples/pi.py [--samples N] [--tasks T]

Each task throws its share of random darts at the unit square and counts those inside
the quarter circle; the driver collects results as they finish and shows progress.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import manta


@manta.remote
def count_inside(samples: int, seed: int) -> int:
    rng = random.Random(seed)
    inside = 0
    for _ in range(samples):
        x, y = rng.random(), rng.random()
        if x * x + y * y <= 1.0:
            inside += 1
    return inside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000_000, help="darts in total")
    parser.add_argument("--tasks", type=int, default=100, help="tasks to split them over")
    args = parser.parse_args()

    started = time.perf_counter()
    manta.init()
    print(
        f"cluster up in {time.perf_counter() - started:.2f} s: {manta.cluster_resources().get('CPU', 0):g} CPUs"
    )

    per_task = args.samples // args.tasks
    pending = [count_inside.remote(per_task, seed) for seed in range(args.tasks)]
    inside = done = 0
    while pending:
        ready, pending = manta.wait(pending, num_returns=min(len(pending), max(1, args.tasks // 20)))
        inside += sum(manta.get(ready))
        done += len(ready)
        estimate = 4.0 * inside / (done * per_task)
        sys.stdout.write(
            f"\r[{'#' * (40 * done // args.tasks):<40}] {done}/{args.tasks} tasks, pi ~ {estimate:.6f}"
        )
        sys.stdout.flush()
    print()
    pi = 4.0 * inside / (args.tasks * per_task)
    print(f"pi ~ {pi:.6f} from {args.tasks * per_task:,} darts in {time.perf_counter() - started:.2f} s")
    manta.shutdown()


if __name__ == "__main__":
    main()
