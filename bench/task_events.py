"""Task events: what recording costs, and how fast the state API lists a full store.

    python bench/task_events.py [--tasks 15000] [--rounds 3] [--records 100000]

Throughput of no-op tasks submitted at once and then gotten, with task events on (the
default) and off (``enable_task_events=False``), in rounds that alternate in one cluster
so both see the same machine (the median of each is shown); then the latency of ``list_tasks`` (a filter that scans every
record, and the default listing) over a store holding ``--records`` task records, and
of ``summarize_tasks``. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import manta
from manta.util.state import list_tasks, summarize_tasks


def _noop() -> None:
    return None


def _rates(f: object, n: int, recorded: bool) -> tuple[float, float]:
    """Tasks per second until their results are in, and until their events are in the
    store too (the gcs's share of the cost, which a sustained load pays)."""
    before = _count()
    start = time.perf_counter()
    manta.get([f.remote() for _ in range(n)])  # type: ignore[attr-defined]
    done = time.perf_counter() - start
    while recorded and _count() < before + n:
        time.sleep(0.005)
    filed = time.perf_counter() - start
    time.sleep(0.5)  # a quiet machine for the next round
    return n / done, n / filed


def _timed(call: object, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=15_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    manta.init()
    on = manta.remote(_noop)
    off = manta.remote(enable_task_events=False)(_noop)
    _rates(on, 2000, True)
    _rates(off, 2000, False)
    rates: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
    for i in range(args.rounds):  # alternating which goes first
        for name in ("on", "off") if i % 2 == 0 else ("off", "on"):
            rates[name].append(_rates(on if name == "on" else off, args.tasks, name == "on"))
    while len(list_tasks(limit=1, raise_on_missing_output=False)) and _count() < args.records:
        manta.get([on.remote() for _ in range(min(20_000, args.records - _count()))])
        time.sleep(0.5)  # the last reports reach the store
    result = {
        "tasks_per_s_events_off": round(statistics.median(r[0] for r in rates["off"])),
        "tasks_per_s_events_on": round(statistics.median(r[0] for r in rates["on"])),
        "tasks_per_s_events_on_until_stored": round(statistics.median(r[1] for r in rates["on"])),
        "records_in_store": _count(),
        "list_tasks_filter_scan_ms": _timed(lambda: list_tasks(filters=[("state", "=", "RUNNING")])),
        "list_tasks_default_ms": _timed(lambda: list_tasks()),
        "summarize_tasks_ms": _timed(summarize_tasks),
    }
    off_rate = result["tasks_per_s_events_off"]
    result["recording_cost_pct"] = round(100 * (1 - result["tasks_per_s_events_on"] / off_rate), 1)
    result["recording_cost_until_stored_pct"] = round(
        100 * (1 - result["tasks_per_s_events_on_until_stored"] / off_rate), 1
    )
    print(json.dumps(result))
    manta.shutdown()


def _count() -> int:
    summary = summarize_tasks()["cluster"]
    return int(summary["total_tasks"] + summary["total_actor_tasks"] + summary["total_actor_scheduled"])


if __name__ == "__main__":
    main()
