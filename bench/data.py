"""Manta Data beside Ray Data 2.60: the workloads of ``bench/data_workloads.py``.

    python bench/data.py [--framework manta|ray|both] [--only NAME,...] [--scale full|small]
                         [--repeat N] [--json OUT] [--ray-python PATH] [--data-dir DIR]

Every run of every workload is a fresh process (``sys.executable`` for Manta, the Ray
interpreter for Ray) in a session of its own; whatever it leaves running is reported and
killed by pid. The table shows the median of the runs. ``parquet_aggregate`` and
``parquet_filter`` read NYC-taxi-like Parquet that is generated once per scale into
``--data-dir`` (not timed) and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from data_workloads import SESSION_LINE, SIZES, WORKLOADS, Sizes, taxi_paths  # noqa: E402
from fresh import run_fresh  # noqa: E402
from run import Results, can_import_ray, median_of, precompile, table  # noqa: E402

CHOICES = {"both": ["manta", "ray"], "manta": ["manta"], "ray": ["ray"]}
# The machine sets PYTHONDONTWRITEBYTECODE=1; without it Manta (run from its source tree)
# reads __pycache__ as an installed package would, as Ray does. Progress bars would draw on
# stderr for nothing; both frameworks are asked to leave them out.
UNSET_ENV = ("PYTHONDONTWRITEBYTECODE",)
SET_ENV = {"RAY_DATA_DISABLE_PROGRESS_BARS": "1"}
Runs = dict[str, dict[str, list[dict[str, Any]]]]  # framework -> workload -> every run's metrics

# NYC-taxi-like columns: payment types and how often each occurs, passenger counts likewise.
PAYMENT_TYPES = ("Credit", "Cash", "No Charge", "Dispute")
PAYMENT_SHARES = (0.7, 0.27, 0.02, 0.01)
PASSENGER_SHARES = (0.02, 0.7, 0.14, 0.04, 0.02, 0.05, 0.03)
TIP_RATES = (0.0, 0.15, 0.2, 0.25)
MONTH_US = 31 * 86_400 * 1_000_000


def _pick(rng: Any, shares: tuple[float, ...], n: int) -> Any:
    """``n`` indices into ``shares``, drawn with those probabilities (faster than ``choice``)."""
    import numpy as np

    cumulative = np.cumsum(shares)
    return np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right")


def taxi_table(seed: int, n: int) -> Any:
    """``n`` trips of a month: the columns and rough distributions of the NYC taxi data."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    pickup = np.datetime64("2019-01-01T00:00:00", "us").astype(np.int64) + rng.integers(0, MONTH_US, n)
    distance = np.round(rng.exponential(3.0, n), 2)
    duration_us = (distance * 180 + rng.exponential(300, n)).astype(np.int64) * 1_000_000
    fare = np.round(2.5 + 2.5 * distance + rng.standard_normal(n).clip(-2, 5), 2)
    payment = _pick(rng, PAYMENT_SHARES, n)
    by_card = payment == 0
    tip = np.round(fare * np.asarray(TIP_RATES)[rng.integers(0, len(TIP_RATES), n)], 2) * by_card
    return pa.table(
        {
            "vendor_id": rng.integers(1, 3, n),
            "pickup_at": pa.array(pickup, pa.timestamp("us")),
            "dropoff_at": pa.array(pickup + duration_us, pa.timestamp("us")),
            "passenger_count": _pick(rng, PASSENGER_SHARES, n),
            "trip_distance": distance,
            "fare_amount": fare,
            "tip_amount": tip,
            "total_amount": np.round(fare + tip + 0.8, 2),
            "payment_type": pa.array(PAYMENT_TYPES).take(pa.array(payment)),
            "pickup_location_id": rng.integers(1, 266, n),
        }
    )


def _write_taxi_file(path: Path, seed: int, sizes: Sizes) -> dict[str, float]:
    """One file of ``taxi_rows_per_file`` rows in row groups; its rows, bytes and sums."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = taxi_table(seed, sizes.taxi_rows_per_file)
    pq.write_table(table, path, row_group_size=sizes.taxi_row_group_rows)
    return {
        "rows": table.num_rows,
        "bytes": path.stat().st_size,
        "tip_amount": pc.sum(table["tip_amount"]).as_py(),
        "total_amount": pc.sum(table["total_amount"]).as_py(),
    }


def ensure_taxi_data(data_dir: Path, scale: str) -> Path:
    """The Parquet directory of ``scale``, generated (with progress on stderr) unless its
    manifest says a complete one is already there; the manifest is written last."""
    directory, manifest = taxi_paths(data_dir, scale)
    sizes = SIZES[scale]
    if manifest.exists() and json.loads(manifest.read_text()).get("target_bytes") == sizes.taxi_target_bytes:
        return directory
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    totals = {"rows": 0.0, "bytes": 0.0, "tip_amount": 0.0, "total_amount": 0.0}
    t = time.perf_counter()
    index = 0
    while totals["bytes"] < sizes.taxi_target_bytes:
        stats = _write_taxi_file(directory / f"part-{index:04d}.parquet", index, sizes)
        totals = {k: totals[k] + stats[k] for k in totals}
        index += 1
        print(
            f"generating {directory}: {index} files, {totals['bytes'] / 1e9:.2f} of "
            f"{sizes.taxi_target_bytes / 1e9:g} GB ({time.perf_counter() - t:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    record = {**totals, "rows": int(totals["rows"]), "bytes": int(totals["bytes"])}
    record |= {"files": index, "target_bytes": sizes.taxi_target_bytes}
    manifest.write_text(json.dumps(record, indent=2))
    return directory


def run_once(python: str, framework: str, workload: str, args: argparse.Namespace) -> dict[str, Any]:
    """One workload in a fresh process; its metrics, or ``{"error": ...}``. Processes it left
    behind, in its session or naming its cluster's session directory (Manta's daemons start
    sessions of their own), are killed by pid and listed under ``left_after_exit``: no
    ``ray stop --force``, which would kill every other Ray cluster on the machine."""
    cmd = [python, str(HERE / "data_workloads.py"), "--framework", framework, "--workload", workload]
    cmd += ["--scale", args.scale, "--data-dir", str(args.data_dir)]
    code, out, err, left = run_fresh(cmd, framework, args.timeout)
    sessions = [line.removeprefix(SESSION_LINE) for line in out.splitlines() if line.startswith(SESSION_LINE)]
    left += [p for session_dir in sessions for p in kill_naming(session_dir)]
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if code != 0 or not lines:
        tail = " | ".join(err.strip().splitlines()[-3:]) or "(no stderr)"
        result: dict[str, Any] = {"error": f"exit {code}: {tail}"}
    else:
        result = dict(json.loads(lines[-1]))
    if left:
        result["left_after_exit"] = [f"{pid}:{name}" for pid, name in left]
    return result


def kill_naming(session_dir: str) -> list[tuple[int, str]]:
    """Kill (by pid) the processes whose command line names ``session_dir``; which they were."""
    import psutil

    if not session_dir:
        return []
    # The whole directory name: not a longer one that starts with it.
    names = re.compile(re.escape(session_dir) + r"(?![\w.-])")
    killed = []
    for p in psutil.process_iter(["cmdline", "name"]):
        if p.pid != os.getpid() and names.search(" ".join(p.info["cmdline"] or [])):
            try:
                p.kill()
            except psutil.NoSuchProcess:
                continue
            killed.append((p.pid, p.info["name"]))
    return killed


def run_all(frameworks: list[str], workloads: list[str], args: argparse.Namespace) -> tuple[Results, Runs]:
    """Every workload ``--repeat`` times per framework: the medians, and every run."""
    pythons = {"manta": sys.executable, "ray": args.ray_python}
    medians: Results = {fw: {} for fw in frameworks}
    runs: Runs = {fw: {} for fw in frameworks}
    for fw in frameworks:
        for w in workloads:
            done = []
            for i in range(args.repeat):
                done.append(run_once(pythons[fw], fw, w, args))
                print(f"{fw:5} {w:18} run {i + 1}/{args.repeat}: {done[-1]}", file=sys.stderr, flush=True)
            medians[fw][w], runs[fw][w] = median_of(done), done
    return medians, runs


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--framework", choices=list(CHOICES), default="both")
    parser.add_argument("--only", help=f"comma-separated workloads, of: {', '.join(WORKLOADS)}")
    parser.add_argument("--scale", choices=list(SIZES), default="full", help="small: ~2 minutes a framework")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--ray-python", default="/tmp/rayref/bin/python")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/manta-data-bench"))
    parser.add_argument("--timeout", type=float, help="seconds per workload run (full: 600, small: 120)")
    args = parser.parse_args()
    args.timeout = args.timeout or (600.0 if args.scale == "full" else 120.0)
    args.workloads = args.only.split(",") if args.only else list(WORKLOADS)
    unknown = set(args.workloads) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose from {', '.join(WORKLOADS)}")
    return args


def main() -> int:
    args = _parse_args()
    for name in UNSET_ENV:  # run_fresh passes this process's environment on
        os.environ.pop(name, None)
    os.environ.update(SET_ENV)
    frameworks = list(CHOICES[args.framework])
    if "ray" in frameworks and not can_import_ray(args.ray_python):
        print(f"skipping ray: {args.ray_python} cannot `import ray` (set --ray-python)", file=sys.stderr)
        frameworks.remove("ray")
    if "manta" in frameworks:
        precompile(sys.executable)
    if {"parquet_aggregate", "parquet_filter"} & set(args.workloads):
        ensure_taxi_data(args.data_dir, args.scale)

    medians, runs = run_all(frameworks, args.workloads, args)
    print(table(medians, args.workloads))
    for fw, by_workload in medians.items():
        for w, metrics in by_workload.items():
            left = [*metrics.get("leftover_processes", []), *metrics.get("left_after_exit", [])]
            if left:
                print(f"\nWARNING {fw} {w}: survived shutdown: {left}")
    if args.json:
        record = {"scale": args.scale, "repeat": args.repeat, "results": medians, "runs": runs}
        args.json.write_text(json.dumps(record, indent=2))
    failed = any("error" in m for by_w in medians.values() for m in by_w.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
