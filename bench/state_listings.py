"""The state API's listings other than tasks: how long each takes on a small cluster.

    python bench/state_listings.py [--framework manta|ray] [--actors 20] [--objects 200]

Starts a 2-CPU cluster, creates ``--actors`` actors and puts ``--objects`` objects, then
times each listing and summary (the median of 7 calls, in ms) through the framework's own
``util.state`` API, the way a user calls it. Run it once per framework (Ray from its own
environment: ``/tmp/rayref/bin/python bench/state_listings.py --framework ray``). Prints one
JSON object.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import time
from typing import Any


def _timed(call: Any, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--framework", choices=("manta", "ray"), default="manta")
    parser.add_argument("--actors", type=int, default=20)
    parser.add_argument("--objects", type=int, default=200)
    args = parser.parse_args()
    fw = importlib.import_module(args.framework)
    state = importlib.import_module(f"{args.framework}.util.state")
    fw.init(num_cpus=2, include_dashboard=args.framework == "ray")

    @fw.remote(num_cpus=0)
    class Idle:
        def ready(self) -> bool:
            return True

    actors = [Idle.remote() for _ in range(args.actors)]
    fw.get([a.ready.remote() for a in actors])
    refs = [fw.put(i) for i in range(args.objects)]
    time.sleep(2)  # let the cluster's records settle
    calls = {
        "list_actors": lambda: state.list_actors(limit=10_000),
        "list_nodes": state.list_nodes,
        "list_workers": lambda: state.list_workers(limit=10_000),
        "list_objects": lambda: state.list_objects(limit=10_000),
        "list_jobs": state.list_jobs,
        "list_placement_groups": state.list_placement_groups,
        "list_actors_filtered": lambda: state.list_actors(filters=[("state", "=", "ALIVE")], limit=10_000),
        "summarize_actors": state.summarize_actors,
        "summarize_objects": state.summarize_objects,
    }
    result: dict[str, Any] = {"framework": args.framework, "actors": args.actors, "objects": len(refs)}
    for name, call in calls.items():
        call()  # warm: the first call pays imports and connections
        result[name + "_ms"] = _timed(call)
    print(json.dumps(result))
    fw.shutdown()


if __name__ == "__main__":
    main()
