"""A remote driver against a local one: the same workloads through the cluster's client
port and through a driver on the head's own node.

    python bench/client.py --framework ray|manta --mode local|client [--json OUT] [--repeat N]
                           [--seconds S] [--settle S] [--ray-python PATH]
    python bench/client.py --compare OUT [OUT ...]     # the tables of saved runs side by side

Starts a 2-CPU head with the framework's own CLI (``ray start --head`` / ``manta start
--head``) in a fresh temporary directory, runs ``--repeat`` fresh driver processes
against it and stops it again (``ray stop`` / ``manta stop``), then checks by pid that
nothing it started is left (every process of the run carries a tag in its environment;
survivors are killed and reported). The drivers connect:

    ray   local   ray.init(address="127.0.0.1:<gcs port>")
    ray   client  ray.init("ray://127.0.0.1:<client port>")
    manta local   manta.init(address="127.0.0.1:<gcs port>")
    manta client  manta.init("manta://127.0.0.1:<client port>"), MANTA_AUTH_TOKEN = the cluster token

A client driver gets an empty MANTA_TMPDIR of its own, so it cannot find the head's
session (its sockets, its shared-memory store) and has to go over the client port, as a
driver on another host would.

Workloads (medians over the drivers; each driver times each for ``--seconds`` or a fixed count):

    init_s             the init() call itself
    first_task_s       the first no-op task after init, get included (may start a worker)
    tasks_sync         call a no-op task and get it, one at a time
    tasks_async        submit 1,000 no-op tasks, then get them all (batches for --seconds)
    actor_calls_sync   one actor: call a no-op method and get it, one at a time
    actor_calls_async  1,000 calls, then get them all (batches for --seconds)
    put_100mb          put a 100 MiB numpy array (median of 5 puts)
    get_100mb          get a 100 MiB numpy array a task made (median of 5; the task has
                       finished before the clock starts)
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))  # this checkout's manta, for the names of its session files
# Each metric and its unit.
METRICS = {
    "init_s": "s",
    "first_task_s": "s",
    "tasks_sync": "tasks/s",
    "tasks_async": "tasks/s",
    "actor_calls_sync": "calls/s",
    "actor_calls_async": "calls/s",
    "put_100mb": "s/put",
    "get_100mb": "s/get",
}
BATCH = 1_000
ARRAY_BYTES = 100 * 1024 * 1024
TRANSFERS = 5
# Every process a run starts inherits this variable (the head's daemons and workers from
# the CLI, the drivers from us), so what is left after the stop can be found by pid.
TAG_VAR = "BENCH_CLIENT_TAG"
# See bench/run.py: without this, Manta (run from its source tree) compiles every module it
# imports in every process, while Ray's installed package ships with bytecode.
UNSET_ENV = ("PYTHONDONTWRITEBYTECODE",)
BASE_ENV = {"RAY_DEDUP_LOGS": "0", "RAY_USAGE_STATS_ENABLED": "0"}


# ---------------------------------------------------------------------------- the driver


def _rate(call: Callable[[], object], seconds: float, per_call: int = 1) -> float:
    """Calls ``call`` until ``seconds`` have passed (at least once); ``per_call`` units per call."""
    done = 0
    start = now = time.perf_counter()
    while done == 0 or now - start < seconds:
        call()
        done += per_call
        now = time.perf_counter()
    return done / (now - start)


def _drive(framework: str, address: str, seconds: float) -> dict[str, float]:
    """The workloads, in this (fresh) process, against the cluster at ``address``."""
    import numpy as np

    fw: Any = importlib.import_module(framework)
    start = time.perf_counter()
    fw.init(address=address)
    result = {"init_s": time.perf_counter() - start}

    @fw.remote
    def noop() -> None:
        return None

    @fw.remote
    def make_array(nbytes: int) -> Any:
        return np.ones(nbytes, dtype=np.uint8)

    class Idle:
        def noop(self) -> None:
            return None

    actor_class: Any = fw.remote(Idle)  # not as a decorator: mypy would keep the bare class
    start = time.perf_counter()
    fw.get(noop.remote())
    result["first_task_s"] = time.perf_counter() - start
    fw.get([noop.remote() for _ in range(100)])  # both CPUs' workers up before the clock
    result["tasks_sync"] = _rate(lambda: fw.get(noop.remote()), seconds)
    result["tasks_async"] = _rate(lambda: fw.get([noop.remote() for _ in range(BATCH)]), seconds, BATCH)

    actor = actor_class.remote()
    fw.get([actor.noop.remote() for _ in range(10)])
    result["actor_calls_sync"] = _rate(lambda: fw.get(actor.noop.remote()), seconds)
    result["actor_calls_async"] = _rate(
        lambda: fw.get([actor.noop.remote() for _ in range(BATCH)]), seconds, BATCH
    )

    array = np.ones(ARRAY_BYTES, dtype=np.uint8)
    puts = []
    for _ in range(TRANSFERS):
        start = time.perf_counter()
        ref = fw.put(array)
        puts.append(time.perf_counter() - start)
        del ref  # frees the copy in the store: five of them need not fit at once
    result["put_100mb"] = statistics.median(puts)

    gets = []
    for _ in range(TRANSFERS):
        ref = make_array.remote(ARRAY_BYTES)
        fw.wait([ref], fetch_local=False)
        start = time.perf_counter()
        value = fw.get(ref)
        gets.append(time.perf_counter() - start)
        if value.nbytes != ARRAY_BYTES:
            raise RuntimeError(f"got {value.nbytes} bytes, expected {ARRAY_BYTES}")
        del value, ref
    result["get_100mb"] = statistics.median(gets)
    fw.shutdown()
    return result


# ------------------------------------------------------------------------------ the head


@dataclass(frozen=True)
class Cluster:
    """A head to start with the framework's CLI. Its stop command and the tag of its
    processes are known before the start, so a start that fails half-way is cleaned up too."""

    framework: str
    mode: str
    tmp: Path
    cli: str
    tag: str
    env: dict[str, str]


def _env(tag: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in UNSET_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return {**env, **BASE_ENV, TAG_VAR: tag, **extra}


def new_cluster(framework: str, mode: str, tmp: Path, ray_python: str) -> Cluster:
    tag = secrets.token_hex(8)
    if framework == "ray":
        # `ray start` turns token auth on by itself when ~/.ray/auth_token exists, a driver
        # does not (it then fails with "token is missing"): say so to both; both read that file.
        env = _env(tag, RAY_AUTH_MODE="token")
        return Cluster(framework, mode, tmp, str(Path(ray_python).with_name("ray")), tag, env)
    env = _env(tag, MANTA_TMPDIR=str(tmp / "manta"))
    return Cluster(framework, mode, tmp, str(Path(sys.executable).with_name("manta")), tag, env)


def _free_ports(n: int) -> list[int]:
    """``n`` distinct ports free now (the head binds them a moment later: a small race)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def _run_cli(cluster: Cluster, *args: str, timeout_s: float = 180) -> None:
    cmd = [cluster.cli, *args]
    proc = subprocess.run(
        cmd, env=cluster.env, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip())[-2000:]
        raise RuntimeError(f"`{Path(cluster.cli).name} {args[0]}` failed ({proc.returncode}): {tail}")


def _wait_listening(port: int, timeout_s: float = 30) -> None:
    """Until something accepts connections on ``port``: the CLI may return before its client
    server is up, and that start-up belongs to the head, not to the first driver's init()."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"nothing listens on the client port {port} after {timeout_s:g} s"
                ) from None
            time.sleep(0.1)


def start(cluster: Cluster) -> tuple[str, dict[str, str]]:
    """Start the head; the address a driver passes to init() and the driver's environment."""
    gcs_port, client_port = _free_ports(2)
    address, env = _start(cluster, gcs_port, client_port)
    if cluster.mode == "client":
        _wait_listening(client_port)
    return address, env


def _start(cluster: Cluster, gcs_port: int, client_port: int) -> tuple[str, dict[str, str]]:
    if cluster.framework == "ray":
        _run_cli(
            cluster,
            "start",
            "--head",
            f"--port={gcs_port}",
            f"--ray-client-server-port={client_port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            f"--temp-dir={cluster.tmp / 'ray'}",
            "--disable-usage-stats",
        )
        # Ray's init() swaps 127.0.0.1 for the node's own IP, which the gcs listens on.
        if cluster.mode == "local":
            return f"127.0.0.1:{gcs_port}", cluster.env
        return f"ray://127.0.0.1:{client_port}", cluster.env
    return _start_manta(cluster, gcs_port, client_port)


def _start_manta(cluster: Cluster, gcs_port: int, client_port: int) -> tuple[str, dict[str, str]]:
    from manta._private.api.discovery import CURRENT_CLUSTER_FILE
    from manta._private.common.session import ADDRESS_FILE, read_token

    args = ["start", "--head", "--port", str(gcs_port), "--num-cpus", "2"]
    # The client port is served by the head's HTTP service process: a client run keeps it.
    if cluster.mode == "client":
        args += ["--dashboard-port", "0", "--client-port", str(client_port)]
    else:
        args.append("--no-include-dashboard")
    _run_cli(cluster, *args)
    session = Path((cluster.tmp / "manta" / CURRENT_CLUSTER_FILE).read_text().strip())
    if cluster.mode == "local":
        # init() finds the session (token, sockets, store) by its gcs address under MANTA_TMPDIR.
        return json.loads((session / ADDRESS_FILE).read_text())["gcs_address"], cluster.env
    driver_tmp = cluster.tmp / "driver"
    driver_tmp.mkdir()
    token = read_token(str(session)).decode()
    driver_env = {**cluster.env, "MANTA_TMPDIR": str(driver_tmp), "MANTA_AUTH_TOKEN": token}
    return f"manta://127.0.0.1:{client_port}", driver_env


def tagged_pids(tag: str) -> dict[int, str]:
    """Processes (pid -> command name) whose environment carries ``tag``."""
    needle = f"{TAG_VAR}={tag}".encode()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if needle in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                found[int(entry)] = Path(f"/proc/{entry}/comm").read_text().strip()
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def stop(cluster: Cluster, grace_s: float = 20) -> list[str]:
    """Stop the cluster with its CLI; what outlived it by ``grace_s`` (then killed by pid)."""
    subprocess.run([cluster.cli, "stop"], env=cluster.env, capture_output=True, timeout=120, check=False)
    deadline = time.monotonic() + grace_s
    while (left := tagged_pids(cluster.tag)) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return [f"{name} ({pid})" for pid, name in sorted(left.items())]


def run_driver(
    framework: str, address: str, env: dict[str, str], python: str, seconds: float, timeout_s: float
) -> dict[str, Any]:
    """One driver in a fresh process (a session of its own); its metrics, or ``{"error": ...}``."""
    from run import run_child  # bench/run.py (imported here: a child under Ray's Python has no manta)

    cmd = [python, str(Path(__file__).resolve()), "--child", framework, "--address", address]
    return run_child([*cmd, "--seconds", str(seconds)], env, timeout_s)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Start a head, run the drivers against it one after another, stop it."""
    python = args.ray_python if args.framework == "ray" else sys.executable
    report: dict[str, Any] = {"framework": args.framework, "mode": args.mode}
    report |= {"repeat": args.repeat, "seconds": args.seconds}
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bcl-", ignore_cleanup_errors=True) as tmp:
        cluster = new_cluster(args.framework, args.mode, Path(tmp), args.ray_python)
        try:
            begin = time.perf_counter()
            address, env = start(cluster)
            report |= {"address": address, "head_start_s": time.perf_counter() - begin}
            # Let the head settle: on 2 cores its agents, still starting, would compete with
            # the first driver, and a Ray Client connection made within ~2 s of `ray start`
            # fails (the proxy's first SpecificServer exits at once: "Starting Ray client
            # server failed"); 10 s after, it works.
            time.sleep(args.settle)
            for i in range(args.repeat):
                runs.append(run_driver(args.framework, address, env, python, args.seconds, args.timeout))
                print(f"{args.framework} {args.mode} run {i + 1}/{args.repeat}: {runs[-1]}", file=sys.stderr)
        except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as e:  # mostly: no head
            report["error"] = str(e)
            print(f"{args.framework} {args.mode}: {e}", file=sys.stderr)
        finally:
            left = stop(cluster)
    if left:
        print(f"WARNING: survived `{Path(cluster.cli).name} stop` (killed): {left}", file=sys.stderr)
    good = [r for r in runs if "error" not in r]
    median = {k: statistics.median(r[k] for r in good) for k in METRICS if good}
    failed = len(runs) - len(good)
    return report | {"median": median, "runs": runs, "failed_runs": failed, "leftover_processes": left}


# ------------------------------------------------------------------------------- reports


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.4f}" if value < 1 else f"{value:,.3f}" if value < 10 else f"{value:,.0f}"


def table(reports: list[dict[str, Any]]) -> str:
    """One column per report (framework and mode), one row per metric."""
    names = [f"{r['framework']} {r['mode']}" for r in reports]
    rows = ["| metric | unit | " + " | ".join(names) + " |", "| --- | --- |" + " ---: |" * len(names)]
    for metric, unit in METRICS.items():
        cells = [_fmt(r["median"].get(metric)) for r in reports]
        rows.append(f"| {metric} | {unit} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--framework", choices=("ray", "manta"), default="manta")
    parser.add_argument("--mode", choices=("local", "client"), default="local")
    parser.add_argument("--repeat", type=int, default=3, help="fresh driver processes")
    parser.add_argument("--seconds", type=float, default=3.0, help="per timed workload, per driver")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--ray-python", default="/tmp/rayref/bin/python")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per driver")
    parser.add_argument(
        "--settle", type=float, default=10, help="seconds between the start and the first driver"
    )
    parser.add_argument("--compare", type=Path, nargs="+", help="print the tables of these --json files")
    parser.add_argument("--child", choices=("ray", "manta"), help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_drive(args.child, args.address, args.seconds)))
        return 0
    if args.compare:
        print(table([json.loads(path.read_text()) for path in args.compare]))
        return 0
    report = measure(args)
    print(table([report]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 1 if "error" in report or report["failed_runs"] or report["leftover_processes"] else 0


if __name__ == "__main__":
    sys.exit(main())
