"""Running one benchmark measurement in a fresh process and cleaning up after it.

Shared by the benchmark scripts: the child runs in its own session, so that whatever it
leaves behind (daemons that did not exit with it) can be found by session id, reported
and killed by pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENV = {"RAY_DEDUP_LOGS": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def session_pids(sid: int) -> list[tuple[int, str]]:
    """Processes still in session ``sid`` (the child's own, so: what it left behind)."""
    ps = subprocess.run(["ps", "-eo", "pid=,sid=,comm="], capture_output=True, text=True).stdout
    left = []
    for line in ps.splitlines():
        pid, proc_sid, comm = line.split(None, 2)
        if int(proc_sid) == sid:
            left.append((int(pid), comm))
    return left


def ray_daemons() -> list[str]:
    """Ray processes running on this machine (any session)."""
    ps = subprocess.run(["ps", "-eo", "pid=,comm="], capture_output=True, text=True).stdout
    names = ("raylet", "gcs_server", "plasma_store", "ray::")
    return [line.strip() for line in ps.splitlines() if line.split(None, 1)[1].startswith(names)]


def kill_ray_daemons_since(started: float) -> list[str]:
    """Kill, by pid, the Ray daemons that started at or after ``started`` (this bench's
    own, left by a crashed run); never ``ray stop --force``, which would also stop every
    other Ray cluster on the machine. Returns what it killed."""
    import psutil

    names = ("raylet", "gcs_server", "plasma_store", "ray::")
    killed = []
    for proc in psutil.process_iter(["name", "create_time"]):
        if (proc.info["name"] or "").startswith(names) and (proc.info["create_time"] or 0) >= started:
            try:
                proc.kill()
                killed.append(f"{proc.pid} {proc.info['name']}")
            except psutil.NoSuchProcess:
                pass
    return killed


def run_fresh(
    cmd: list[str], framework: str, timeout_s: float
) -> tuple[int | None, str, str, list[tuple[int, str]]]:
    """Run ``cmd`` in a new session (Manta from this checkout); returns its exit code,
    stdout, stderr and the processes it left behind (already killed)."""
    env = {**os.environ, **ENV}
    if framework == "manta":
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += f"\ntimed out after {timeout_s:g} s"
    time.sleep(2)  # daemons exit shortly after shutdown(); count only what stays
    left = session_pids(proc.pid)
    for pid, _ in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return proc.returncode, out, err, left


def can_import_ray(python: str) -> bool:
    try:
        return subprocess.run([python, "-c", "import ray"], capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
