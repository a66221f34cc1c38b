"""What the dashboard's pages ask the head for, at the scale the UI must stay usable at:
100,000 task records and 1,000 actors.

    python bench/dashboard.py [--framework manta|ray] [--tasks 100000] [--actors 1000]

Starts a 2-CPU cluster with its dashboard, runs ``--tasks`` no-op tasks, creates
``--actors`` actors in batches of 100 (each batch killed once ready, so no more than 100
worker processes live at once: the listing then holds them all, DEAD), and times each
HTTP request a page makes (the median of 7, in ms) with a plain HTTP client. Ray's
dashboard serves the same ``/api/v0`` paths; it has no ``offset`` (the last page of
tasks) and no metrics history, so those rows are Manta's only. Run it once per framework
(Ray from its own environment: ``/tmp/rayref/bin/python bench/dashboard.py --framework
ray``). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from state_listings import _timed  # a sibling script: bench/ is on the path when run

BATCH = 100


def _fetch(url: str, headers: dict[str, str]) -> None:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=120) as reply:
        reply.read()


def _make_work(fw: Any, tasks: int, actors: int) -> None:
    @fw.remote(num_cpus=0)
    def noop() -> None:
        return None

    for start in range(0, tasks, 10_000):
        fw.get([noop.remote() for _ in range(min(10_000, tasks - start))])

    @fw.remote(num_cpus=0)
    class Idle:
        def ready(self) -> bool:
            return True

    for start in range(0, actors, BATCH):
        batch = [Idle.remote() for _ in range(min(BATCH, actors - start))]
        fw.get([a.ready.remote() for a in batch])
        for actor in batch:
            fw.kill(actor)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--framework", choices=("manta", "ray"), default="manta")
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--actors", type=int, default=1000)
    args = parser.parse_args()
    fw = importlib.import_module(args.framework)
    context = fw.init(num_cpus=2, include_dashboard=True)
    if args.framework == "manta":
        base = "http://" + context.dashboard_url
        headers = {"Authorization": "Bearer " + Path(context["session_dir"], "token").read_text().strip()}
    else:  # Ray 2.60 generates a token for a local cluster and keeps it here
        token_file = Path.home() / ".ray" / "auth_token"
        base = "http://" + context.dashboard_url
        headers = {"Authorization": "Bearer " + token_file.read_text().strip()} if token_file.exists() else {}
    started = time.perf_counter()
    _make_work(fw, args.tasks, args.actors)
    made_s = time.perf_counter() - started
    time.sleep(5)  # for the last task events to reach the store

    def listing(resource: str, **params: Any) -> str:
        return f"{base}/api/v0/{resource}?{urllib.parse.urlencode(params)}"

    failed = {"filter_keys": "state", "filter_predicates": "=", "filter_values": "FAILED"}
    requests = {
        "tasks page (first 100)": listing("tasks", limit=100),
        "tasks page, filtered by name": listing(
            "tasks", limit=100, filter_keys="name", filter_predicates="=", filter_values="noop"
        ),
        "actors page (100, detail)": listing("actors", limit=100, detail="true"),
        "nodes page": listing("nodes", limit=10_000),
        "jobs page": f"{base}/api/jobs/",
        "overview: failed tasks counted": listing("tasks", limit=0, **failed),
    }
    if args.framework == "manta":
        requests["tasks page (last 100, offset)"] = listing(
            "tasks", limit=100, offset=max(args.tasks - 100, 0)
        )
        requests["metrics history (1 h)"] = f"{base}/api/v0/metrics/history"
    result = {name: _timed(lambda url=url: _fetch(url, headers)) for name, url in requests.items()}
    print(
        json.dumps(
            {
                "framework": args.framework,
                "tasks": args.tasks,
                "actors": args.actors,
                "setup_s": round(made_s, 1),
                "ms": result,
            },
            indent=1,
        )
    )
    fw.shutdown()


if __name__ == "__main__":
    main()
