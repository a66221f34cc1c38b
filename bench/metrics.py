"""User metrics: what recording costs, in the driver and in tasks, beside Ray; and, for
Manta, how long the head takes to serve /metrics.

    python bench/metrics.py [--tasks 10000] [--rounds 3]                        # Manta
    /tmp/rayref/bin/python bench/metrics.py --ray [--tasks 10000] [--rounds 3]  # Ray

The cost of one ``Counter.inc``, ``Gauge.set`` (with tags) and ``Histogram.observe`` in
the driver; then throughput of no-op tasks submitted at once and gotten, against the same
tasks recording one counter increment each, in rounds that alternate in one cluster (the
median of each is shown); then, for Manta, the latency of ``GET /metrics`` on the head.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import timeit
import urllib.request
from pathlib import Path
from typing import Any


def _recording(metrics: Any) -> dict[str, float]:
    counter = metrics.Counter("bench_counter", tag_keys=("k",)).set_default_tags({"k": "v"})
    gauge = metrics.Gauge("bench_gauge", tag_keys=("k",))
    histogram = metrics.Histogram("bench_histogram", boundaries=[1, 10, 100])
    calls = {
        "counter_inc_ns": counter.inc,
        "gauge_set_with_tags_ns": lambda: gauge.set(1.0, tags={"k": "a"}),
        "histogram_observe_ns": lambda: histogram.observe(5.0),
    }
    n = 100_000
    return {
        name: round(min(timeit.repeat(call, number=n, repeat=3)) / n * 1e9) for name, call in calls.items()
    }


def _rate(framework: Any, f: Any, n: int) -> float:
    start = time.perf_counter()
    framework.get([f.remote() for _ in range(n)])
    rate = n / (time.perf_counter() - start)
    time.sleep(0.5)  # a quiet machine for the next round
    return rate


def _scrape_ms(context: Any) -> float:
    token = Path(context["session_dir"], "token").read_text().strip()
    request = urllib.request.Request(
        "http://" + context.dashboard_url + "/metrics", headers={"Authorization": f"Bearer {token}"}
    )
    times = []
    for _ in range(5):
        start = time.perf_counter()
        urllib.request.urlopen(request, timeout=30).read()
        times.append(time.perf_counter() - start)
        time.sleep(1.1)  # past the head's one-second reuse of a gather
    return round(statistics.median(times) * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ray", action="store_true", help="measure Ray (run with Ray's interpreter)")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.ray:
        import ray as framework
        from ray.util import metrics
    else:
        import manta as framework
        from manta.util import metrics
    context = framework.init(num_cpus=2, include_dashboard=not args.ray)

    def plain() -> None:
        return None

    def counting() -> None:
        metrics.Counter("bench_task_calls").inc()

    tasks = {"plain": framework.remote(plain), "counting": framework.remote(counting)}
    for f in tasks.values():
        _rate(framework, f, 1000)  # workers started, functions exported
    rates: dict[str, list[float]] = {name: [] for name in tasks}
    for _ in range(args.rounds):
        for name, f in tasks.items():
            rates[name].append(_rate(framework, f, args.tasks))
    result: dict[str, Any] = {"framework": "ray" if args.ray else "manta", **_recording(metrics)}
    result.update({f"tasks_per_s_{name}": round(statistics.median(r)) for name, r in rates.items()})
    if not args.ray:
        result["get_metrics_ms"] = _scrape_ms(context)
    framework.shutdown()
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
