"""Placement group create+remove throughput: Manta beside Ray.

    python bench/placement_groups.py [--framework manta|ray|both] [--runs 3]
                                     [--iterations 100] [--ray-iterations 100]
                                     [--json OUT] [--ray-python PATH]

Two layouts, each run ``--runs`` times in a fresh process (the table shows the median run):

    one node     ``init(num_cpus=2)`` (Ray: ``include_dashboard=False``); one-bundle PACK
                 groups ``[{"CPU": 1}]``
    three nodes  the framework's own ``cluster_utils.Cluster`` with three nodes of 2 CPUs on
                 this machine, the driver attached to the head; three-bundle STRICT_SPREAD
                 groups ``[{"CPU": 1}] * 3`` (one bundle on every node)

Each run does 5 warm-up iterations of "create, ``pg.wait()`` until created, remove", then
times ``--iterations`` more of the same loop back to back: groups/s is iterations over the
loop's wall time (the per-iteration create->ready times go into the JSON as ``loop_*``, with
``slow_creates``: iterations over 100 ms). Then, on an idle cluster (0.5 s after the last
removal), 10 single groups timed from ``placement_group()`` to ``wait()`` returning True
(``create_ready_ms``, the median) and 10 to ``get(pg.ready())`` returning (``ready_ms``: a
zero-CPU task scheduled into the group), each removed afterwards. A run fails if a group is
not created within 30 s; it reports whether all CPUs are free again afterwards, how many
groups the gcs still lists as not removed, and how many "no node can provide" warnings
Manta printed.

Each run is a fresh process (Manta in ``sys.executable``, Ray in ``--ray-python``) that
prints one JSON line. Processes still in its session afterwards are reported and killed by
pid; after Ray, the ``raylet``/``gcs_server`` processes this run started, if any remain.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from fresh import can_import_ray, kill_ray_daemons_since, ray_daemons, run_fresh  # noqa: E402

WARMUP = 5
ISOLATED_ROUNDS = 10
PAUSE_S = 0.5
SLOW_S = 0.1  # a create->ready above this counts as slow (Ray's retried scheduling)
LAYOUTS = {
    "one_node": {"bundles": [{"CPU": 1}], "strategy": "PACK", "nodes": 1},
    "three_nodes": {"bundles": [{"CPU": 1}] * 3, "strategy": "STRICT_SPREAD", "nodes": 3},
}
Metrics = dict[str, Any]


# -- in the child process: one framework, one layout ---------------------------------------------
def _start(framework: str, layout: str) -> tuple[Any, Any]:
    """Import ``framework`` by name (this file also runs under Ray's interpreter) and start the
    layout; returns the module and the ``Cluster`` (None for one node)."""
    ray = importlib.import_module(framework)
    if layout == "one_node":
        ray.init(num_cpus=2, include_dashboard=False)
        return ray, None
    cluster_utils = importlib.import_module(f"{framework}.cluster_utils")
    node: dict[str, Any] = {"num_cpus": 2, "object_store_memory": 128 * 2**20}
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    for _ in range(LAYOUTS[layout]["nodes"] - 1):
        cluster.add_node(**node)
    ray.init(address=cluster.address)
    cluster.wait_for_nodes()
    return ray, cluster


def _cycle(pg_api: Any, bundles: list[dict[str, float]], strategy: str) -> tuple[float, float]:
    """One create -> wait -> remove; returns (create->ready s, remove s)."""
    t0 = time.perf_counter()
    pg = pg_api.placement_group(bundles, strategy=strategy)
    if not pg.wait(30):
        raise RuntimeError(f"placement group {bundles} {strategy} not created within 30 s")
    t1 = time.perf_counter()
    pg_api.remove_placement_group(pg)
    return t1 - t0, time.perf_counter() - t1


def _isolated_seconds(
    ray: Any, pg_api: Any, bundles: list[dict[str, float]], strategy: str, how: str
) -> float:
    """create -> ready of one group on an idle cluster (``PAUSE_S`` after the last removal),
    waiting with ``pg.wait()`` or with ``get(pg.ready())``."""
    time.sleep(PAUSE_S)
    t = time.perf_counter()
    pg = pg_api.placement_group(bundles, strategy=strategy)
    if how == "wait":
        if not pg.wait(30):
            raise RuntimeError(f"placement group {bundles} {strategy} not created within 30 s")
    else:
        ray.get(pg.ready(), timeout=30)
    seconds = time.perf_counter() - t
    pg_api.remove_placement_group(pg)
    return seconds


def _cpus_free_again(ray: Any, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if ray.available_resources().get("CPU", 0) == ray.cluster_resources().get("CPU", 0):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def measure(framework: str, layout: str, iterations: int) -> Metrics:
    spec = LAYOUTS[layout]
    bundles, strategy = spec["bundles"], spec["strategy"]
    t_start = time.perf_counter()
    ray, cluster = _start(framework, layout)
    start_s = time.perf_counter() - t_start
    pg_api = importlib.import_module(f"{framework}.util.placement_group")
    try:
        assert len(ray.nodes()) == spec["nodes"], ray.nodes()
        for _ in range(WARMUP):
            _cycle(pg_api, bundles, strategy)
        cycles = []
        t = time.perf_counter()
        for _ in range(iterations):
            cycles.append(_cycle(pg_api, bundles, strategy))
        loop_s = time.perf_counter() - t
        single = [_isolated_seconds(ray, pg_api, bundles, strategy, "wait") for _ in range(ISOLATED_ROUNDS)]
        ready = [_isolated_seconds(ray, pg_api, bundles, strategy, "ready") for _ in range(ISOLATED_ROUNDS)]
        create = [c for c, _ in cycles]
        not_removed = [
            row["state"] for row in pg_api.placement_group_table().values() if row["state"] != "REMOVED"
        ]
        return {
            "version": ray.__version__,
            "iterations": iterations,
            "start_s": round(start_s, 2),
            "loop_s": round(loop_s, 4),
            "groups_per_s": round(iterations / loop_s, 2),
            "loop_create_ready_ms": round(statistics.median(create) * 1e3, 3),
            "loop_create_ready_ms_p90": round(sorted(create)[int(0.9 * len(create))] * 1e3, 3),
            "loop_create_ready_ms_max": round(max(create) * 1e3, 3),
            "slow_creates": sum(c > SLOW_S for c in create),
            "loop_remove_ms": round(statistics.median(r for _, r in cycles) * 1e3, 3),
            "create_ready_ms": round(statistics.median(single) * 1e3, 3),
            "create_ready_ms_all": [round(s * 1e3, 2) for s in single],
            "ready_ms": round(statistics.median(ready) * 1e3, 3),
            "ready_ms_all": [round(s * 1e3, 2) for s in ready],
            "cpus_free_after": _cpus_free_again(ray),
            "groups_not_removed": not_removed,
        }
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()


# -- the runner ---------------------------------------------------------------------------------
def run_child(python: str, framework: str, layout: str, iterations: int, timeout_s: float) -> Metrics:
    cmd = [python, str(Path(__file__).resolve()), "--child", framework, layout, str(iterations)]
    load_1min = os.getloadavg()[0]  # anything else running skews the numbers
    returncode, out, err, left = run_fresh(cmd, framework, timeout_s)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if returncode != 0 or not lines:
        tail = err.strip().splitlines()[-15:] or ["(no stderr)"]
        result: Metrics = {"error": f"exit {returncode}", "stderr_tail": tail}
    else:
        result = dict(json.loads(lines[-1]))
    # Manta warns when a task needs a group's resources that no node offers (yet).
    result["infeasible_warnings"] = err.count("which no node in the cluster can provide")
    result["leftover_processes"] = [f"{comm} ({pid})" for pid, comm in left]
    result["loadavg_1min_before"] = load_1min
    return result


def summarize(runs: list[Metrics]) -> Metrics:
    """The median run by groups/s, and the spread of every run."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": "every run failed"}
    ok.sort(key=lambda r: r["groups_per_s"])
    median = ok[len(ok) // 2]
    return {
        "groups_per_s": median["groups_per_s"],
        "create_ready_ms": statistics.median(r["create_ready_ms"] for r in ok),
        "ready_ms": statistics.median(r["ready_ms"] for r in ok),
        "groups_per_s_all": [r["groups_per_s"] for r in ok],
        "iterations": median["iterations"],
        "slow_creates": [r["slow_creates"] for r in ok],
        "failed_runs": len(runs) - len(ok),
    }


def _fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _ratio(a: float | None, b: float | None, higher_is_better: bool = True) -> str:
    if not a or not b:
        return ""
    ratio = a / b if higher_is_better else b / a  # above 1x: Manta is faster
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.2g}x"


def table(summary: dict[str, dict[str, Metrics]]) -> str:
    rows = [
        "| layout | group | metric | Manta | Ray | Manta/Ray |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    for layout, spec in LAYOUTS.items():
        if not any(layout in by_layout for by_layout in summary.values()):
            continue
        group = f"{len(spec['bundles'])} x CPU:1 {spec['strategy']}"
        m = summary.get("manta", {}).get(layout, {})
        r = summary.get("ray", {}).get(layout, {})
        name = layout.replace("_", " ")
        a, b = m.get("groups_per_s"), r.get("groups_per_s")
        rows.append(f"| {name} | {group} | groups/s | {_fmt(a)} | {_fmt(b)} | {_ratio(a, b)} |")
        for key, label in (
            ("create_ready_ms", "create->ready ms"),
            ("ready_ms", "create->`get(ready())` ms"),
        ):
            a, b = m.get(key), r.get(key)
            rows.append(
                f"| {name} | {group} | {label} | {_fmt(a, 2)} | {_fmt(b, 2)} | {_ratio(a, b, False)} |"
            )
    rows.append("\nManta/Ray above 1x: Manta is faster (for ms rows, Ray's time over Manta's).")
    return "\n".join(rows)


def _manta_tree() -> Metrics:
    """Which Manta was measured: the commit, and a hash of uncommitted changes under manta/."""

    def git(*args: str) -> str:
        cmd = ["git", "-C", str(HERE.parent), *args]
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout

    diff = git("diff", "HEAD", "--", "manta")
    return {
        "commit": git("rev-parse", "HEAD").strip(),
        "uncommitted_files": git("diff", "HEAD", "--name-only", "--", "manta").split(),
        "uncommitted_sha256": hashlib.sha256(diff.encode()).hexdigest()[:16] if diff else None,
    }


def main() -> int:
    started = time.time()  # Ray daemons that start from now on are this run's
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--framework", choices=["manta", "ray", "both"], default="both")
    parser.add_argument("--layout", choices=[*LAYOUTS, "both"], default="both")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per framework and layout")
    parser.add_argument("--iterations", type=int, default=100, help="timed create/wait/remove loops (Manta)")
    parser.add_argument("--ray-iterations", type=int, default=100, help="the same for Ray")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--ray-python", default="/tmp/rayref/bin/python")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per run")
    parser.add_argument("--child", nargs=3, metavar=("FRAMEWORK", "LAYOUT", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        framework, layout, n = args.child
        print(json.dumps(measure(framework, layout, int(n))))
        return 0

    frameworks = ["manta", "ray"] if args.framework == "both" else [args.framework]
    layouts = list(LAYOUTS) if args.layout == "both" else [args.layout]
    if "ray" in frameworks and not can_import_ray(args.ray_python):
        print(f"skipping ray: {args.ray_python} cannot `import ray` (set --ray-python)", file=sys.stderr)
        frameworks.remove("ray")
    pythons = {"manta": sys.executable, "ray": args.ray_python}
    iterations = {"manta": args.iterations, "ray": args.ray_iterations}
    tree_before = _manta_tree()
    raw: dict[str, dict[str, list[Metrics]]] = {}
    for framework in frameworks:
        for layout in layouts:
            for i in range(args.runs):
                result = run_child(pythons[framework], framework, layout, iterations[framework], args.timeout)
                raw.setdefault(framework, {}).setdefault(layout, []).append(result)
                print(f"{framework} {layout} run {i + 1}: {json.dumps(result)}", file=sys.stderr, flush=True)
                if result["leftover_processes"]:
                    print(f"WARNING {framework}: killed after shutdown: {result['leftover_processes']}")
        if framework == "ray" and ray_daemons():
            # Daemons that left the child's session would survive the kill by session above.
            print(f"WARNING ray: daemons left behind, killed by pid: {kill_ray_daemons_since(started)}")

    summary = {
        fw: {layout: summarize(runs) for layout, runs in by_layout.items()} for fw, by_layout in raw.items()
    }
    print(table(summary))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "runs": args.runs,
            "warmup": WARMUP,
            "isolated_rounds": ISOLATED_ROUNDS,
            "pause_s": PAUSE_S,
            "cpus": os.cpu_count(),
            "manta_tree": tree_before,
            "manta_tree_changed_during_runs": _manta_tree() != tree_before,
            "layouts": LAYOUTS,
        }
        doc = {**meta, "summary": summary, "raw": raw}
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    failed = any("error" in r for by_layout in raw.values() for runs in by_layout.values() for r in runs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
