"""The jobs API, Manta beside Ray: submit -> RUNNING, submit -> SUCCEEDED of a trivial
entrypoint, 20 jobs submitted at once, and a pip runtime env's first and cached use.

    python bench/jobs.py [--framework manta|ray|both] [--repeat N] [--json OUT]

Each framework runs in a fresh process that starts a local cluster with its HTTP service
(``init(include_dashboard=True)``) and drives it with its own ``JobSubmissionClient``
over HTTP. Entrypoints are this interpreter's ``python -c pass`` (no cluster work), so
the numbers are the jobs machinery itself. The pip env installs one small package from
the registry into a cache that starts empty (a fresh MANTA_TMPDIR; Ray's is per session).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

PIP_PACKAGE = "emoji==2.14.1"


def _child(framework: str, repeat: int) -> dict[str, Any]:
    if framework == "ray":
        import ray as fw
        from ray.job_submission import JobSubmissionClient
    else:
        import manta as fw  # type: ignore[no-redef]
        from manta.job_submission import JobSubmissionClient  # type: ignore[assignment]
    kwargs: dict[str, Any] = {"address": "local"} if framework == "ray" else {}
    context = fw.init(num_cpus=2, include_dashboard=True, **kwargs)
    client = JobSubmissionClient(f"http://{context.dashboard_url}")
    trivial = f"{sys.executable} -c pass"

    def until(job: str, wanted: tuple[str, ...]) -> float:
        while True:
            status = str(client.get_job_status(job))
            if status in wanted:
                return time.perf_counter()
            if status in ("FAILED", "STOPPED"):
                raise RuntimeError(f"job {job} {status}: {client.get_job_info(job).message}")
            time.sleep(0.005)

    client.submit_job(entrypoint=trivial)  # warm-up: the service's first job starts its machinery
    to_running, to_done = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        job = client.submit_job(entrypoint=trivial)
        to_running.append(until(job, ("RUNNING", "SUCCEEDED")) - t0)
        to_done.append(until(job, ("SUCCEEDED",)) - t0)
    t0 = time.perf_counter()
    jobs = [client.submit_job(entrypoint=trivial) for _ in range(20)]
    for job in jobs:
        until(job, ("SUCCEEDED",))
    twenty = time.perf_counter() - t0
    pip = {"pip": [PIP_PACKAGE]}
    pip_times = []
    for _ in range(2):
        t0 = time.perf_counter()
        job = client.submit_job(entrypoint="python -c 'import emoji'", runtime_env=pip)
        pip_times.append(until(job, ("SUCCEEDED",)) - t0)
    fw.shutdown()
    return {
        "submit_to_running_s": statistics.median(to_running),
        "submit_to_succeeded_s": statistics.median(to_done),
        "twenty_jobs_s": twenty,
        "pip_first_use_s": pip_times[0],
        "pip_cached_s": pip_times[1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=("manta", "ray", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", default=None)
    parser.add_argument("--ray-python", default="/tmp/rayref/bin/python")
    parser.add_argument("--child", choices=("manta", "ray"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.repeat)))
        return
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from fresh import run_fresh

    results: dict[str, dict[str, Any]] = {}
    for framework in ("manta", "ray") if args.framework == "both" else (args.framework,):
        python = sys.executable if framework == "manta" else args.ray_python
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["MANTA_TMPDIR"] = tmp  # an empty runtime-env cache for Manta's first use
            code, out, err, left = run_fresh(
                [python, os.path.abspath(__file__), "--child", framework, "--repeat", str(args.repeat)],
                framework,
                900,
            )
        if code != 0:
            print(f"{framework} failed:\n{err[-3000:]}", file=sys.stderr)
            continue
        results[framework] = json.loads(out.strip().splitlines()[-1])
        if left:
            print(f"warning: {framework} left {len(left)} processes behind: {left}", file=sys.stderr)
    names = sorted({k for r in results.values() for k in r})
    print(
        f"{'metric':<24}"
        + "".join(f"{f:>12}" for f in results)
        + ("   ray/manta" if len(results) == 2 else "")
    )
    for name in names:
        row = [results[f][name] for f in results]
        ratio = f"{row[1] / row[0]:>11.1f}x" if len(row) == 2 and row[0] else ""
        print(f"{name:<24}" + "".join(f"{v:>11.3f}s" for v in row) + "  " + ratio)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
