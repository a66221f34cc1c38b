"""Run the workloads of ``bench/workloads.py`` for Manta, Ray and a plain
``multiprocessing.Pool`` and compare them.

    python bench/run.py [--framework manta|ray|pool|both|all] [--only NAME,...] [--quick]
                        [--repeat N] [--json OUT] [--ray-python PATH]

Every run of every workload is a fresh subprocess; the table shows the median of the runs.
The pool runs only the task workloads (``POOL_WORKLOADS``); the table shows "—" for the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from fresh import kill_ray_daemons_since  # noqa: E402
from workloads import POOL_WORKLOADS, WORKLOADS  # noqa: E402

FRAMEWORKS = ("manta", "ray", "pool")
CHOICES = {"both": ["manta", "ray"], "all": list(FRAMEWORKS)} | {fw: [fw] for fw in FRAMEWORKS}
ENV = {"RAY_DEDUP_LOGS": "0", "RAY_USAGE_STATS_ENABLED": "0"}
# The machine sets PYTHONDONTWRITEBYTECODE=1, so Manta (run from its source tree) would
# compile every module it imports in every run, while Ray's installed package ships with
# bytecode. Runs go without it, so __pycache__ is written once and reused.
UNSET_ENV = ("PYTHONDONTWRITEBYTECODE",)
Results = dict[str, dict[str, dict[str, Any]]]  # framework -> workload -> metric -> value


def run_once(python: str, framework: str, workload: str, quick: bool, timeout_s: float) -> dict[str, Any]:
    """One workload in a fresh process; its metrics, or ``{"error": ...}``."""
    cmd = [python, str(HERE / "workloads.py"), "--framework", framework, "--workload", workload]
    return run_child([*cmd, *(["--quick"] if quick else [])], bench_env(), timeout_s)


def run_child(cmd: list[str], env: dict[str, str], timeout_s: float) -> dict[str, Any]:
    """Run ``cmd``; the JSON object its last ``{...}`` line printed, or ``{"error": ...}``."""
    # A session of its own, so that on a timeout the whole group the run started can be killed.
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"error": f"timed out after {timeout_s:g} s"}
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = " | ".join(err.strip().splitlines()[-3:]) or "(no stderr)"
        return {"error": f"exit {proc.returncode}: {tail}"}
    return dict(json.loads(lines[-1]))


def bench_env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k not in UNSET_ENV}, **ENV}


def precompile(python: str) -> None:
    """Write the bytecode of Manta's whole package, as installing a package does, so that
    the first run does not pay for compiling what later runs read from ``__pycache__``."""
    code = "import compileall, os, manta; compileall.compile_dir(os.path.dirname(manta.__file__), quiet=1)"
    if subprocess.run([python, "-c", code], env=bench_env(), check=False, timeout=300).returncode:
        print("warning: could not precompile manta; its first run compiles its sources", file=sys.stderr)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of each numeric metric; anything else is taken from the first good run."""
    good = [r for r in runs if "error" not in r]
    if not good:
        return runs[0]
    merged = dict(good[0])
    for key, value in merged.items():
        if _number(value):
            merged[key] = statistics.median(r[key] for r in good)
    if len(good) < len(runs):
        merged["failed_runs"] = len(runs) - len(good)
    return merged


def can_import_ray(python: str) -> bool:
    try:
        return subprocess.run([python, "-c", "import ray"], capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _ratio(a: Any, b: Any) -> str:
    return f"{a / b:.2f}x" if _number(a) and _number(b) and b else ""


def table(results: Results, workloads: list[str]) -> str:
    """Manta and Ray side by side, and the pool with a Manta/Pool column when it was asked for."""
    pool = "pool" in results
    head = ["workload", "metric", "Manta", "Ray", *(["Pool"] if pool else []), "Manta/Ray"]
    head += ["Manta/Pool"] if pool else []
    rows = ["| " + " | ".join(head) + " |", "| --- | --- |" + " ---: |" * (len(head) - 2)]
    for w in workloads:
        m, r, p = (results.get(fw, {}).get(w, {}) for fw in FRAMEWORKS)
        keys = [k for k in dict.fromkeys([*m, *r, *p]) if not isinstance(m.get(k, r.get(k, p.get(k))), list)]
        for k in keys:
            a, b, c = m.get(k), r.get(k), p.get(k)
            cells = [w, k, fmt(a), fmt(b), *([fmt(c)] if pool else []), _ratio(a, b)]
            cells += [_ratio(a, c)] if pool else []
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> int:
    started = time.time()  # Ray daemons that start from now on are this run's
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--framework", choices=list(CHOICES), default="all", help="both = manta and ray; all = the three"
    )
    parser.add_argument("--only", help="comma-separated workload names")
    parser.add_argument("--quick", action="store_true", help="20,000 tasks instead of 100,000 in queued_100k")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--ray-python", default="/tmp/rayref/bin/python")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per workload run")
    args = parser.parse_args()

    workloads = args.only.split(",") if args.only else list(WORKLOADS)
    unknown = set(workloads) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose from {', '.join(WORKLOADS)}")
    frameworks = list(CHOICES[args.framework])
    pythons = {"manta": sys.executable, "ray": args.ray_python, "pool": sys.executable}
    if "ray" in frameworks and not can_import_ray(args.ray_python):
        print(f"skipping ray: {args.ray_python} cannot `import ray` (set --ray-python)", file=sys.stderr)
        frameworks.remove("ray")
    if "manta" in frameworks:
        precompile(pythons["manta"])

    results: Results = {fw: {} for fw in frameworks}
    for fw in frameworks:
        for w in workloads:
            if fw == "pool" and w not in POOL_WORKLOADS:
                continue
            runs = []
            for i in range(args.repeat):
                runs.append(run_once(pythons[fw], fw, w, args.quick, args.timeout))
                print(f"{fw:5} {w:22} run {i + 1}/{args.repeat}: {runs[-1]}", file=sys.stderr, flush=True)
            results[fw][w] = median_of(runs)
        if fw == "ray" and any("error" in r or r.get("failed_runs") for r in results[fw].values()):
            # A crashed Ray driver can leave raylet and gcs_server behind: this run's, by pid.
            for left in kill_ray_daemons_since(started):
                print(f"WARNING ray: killed a daemon left behind: {left}", file=sys.stderr)

    print(table(results, workloads))
    for fw, by_workload in results.items():
        procs = by_workload.get("idle_footprint", {}).get("process_list")
        if procs:
            print(f"\n{fw} idle processes: " + ", ".join(f"{p['name']} {p['rss_mb']} MB" for p in procs))
        for w, metrics in by_workload.items():
            if metrics.get("leftover_processes"):
                print(f"\nWARNING {fw} {w}: survived shutdown: {metrics['leftover_processes']}")
    if args.json:
        args.json.write_text(
            json.dumps({"quick": args.quick, "repeat": args.repeat, "results": results}, indent=2)
        )
    failed = any("error" in m for by_w in results.values() for m in by_w.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
