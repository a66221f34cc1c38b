"""The session directory: where a cluster's logs, sockets, token and address file live.

<tmpdir>/session_<date>_<pid>_<rand>/
    token           the cluster token, mode 0600
    address.json    how to reach the gcs and the head node (written when they are up)
    logs/           one .out/.err pair per process
    sockets/        Unix sockets of the node's processes
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Any

TOKEN_FILE = "token"
# The directory of a session's log files, and the names in it that more than one layer
# knows: who writes a file and who finds it again read the name from here.
LOGS_DIR = "logs"
# The head's audit log (gcs/audit.py writes it; the log API refuses to serve it).
AUDIT_FILE = "audit.jsonl"
WORKER_LOG_PREFIX = "worker-"
JOB_DRIVER_LOG_PREFIX = "job-driver-"
# Written by a worker to its stdout/stderr when the running task changes, so the node
# daemon can label each line with the task that printed it; stripped before drivers see it.
TASK_MARKER = "\x1e:manta-task:"
ADDRESS_FILE = "address.json"


# Unix socket paths are limited to 107 bytes; the longest name we use is ~20.
_MAX_SOCKET_DIR = 80


def create_session_dir(tmpdir: str) -> str:
    os.makedirs(tmpdir, mode=0o755, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    path = os.path.join(tmpdir, f"session_{stamp}_{os.getpid()}_{secrets.token_hex(2)}")
    os.makedirs(os.path.join(path, LOGS_DIR))
    os.chmod(path, 0o700)
    sockets = _socket_dir(path)
    os.makedirs(sockets, mode=0o700)
    if sockets != os.path.join(path, "sockets"):
        os.symlink(sockets, os.path.join(path, "sockets"))
    return path


def _socket_dir(session_dir: str) -> str:
    """Where the session's Unix sockets live: inside it, or, when its path is too long
    for socket names, in a short private directory derived from it (linked as sockets/)."""
    inside = os.path.join(session_dir, "sockets")
    if len(inside) <= _MAX_SOCKET_DIR:
        return inside
    digest = hashlib.sha1(os.path.abspath(session_dir).encode()).hexdigest()[:12]
    return os.path.join(tempfile.gettempdir(), f"manta-sock-{digest}")


def remove_socket_dir(session_dir: str) -> None:
    """Remove the short socket directory of a session, if it has one (its sockets/ link
    stays, dangling, as a record)."""
    sockets = _socket_dir(session_dir)
    if sockets != os.path.join(session_dir, "sockets"):
        shutil.rmtree(sockets, ignore_errors=True)


def write_token(session_dir: str, token: bytes | None = None) -> bytes:
    """Store the cluster token (a new one unless given), readable by this user only."""
    token = token or secrets.token_hex(32).encode()
    path = os.path.join(session_dir, TOKEN_FILE)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(token)
    return token


def read_token(session_dir: str) -> bytes:
    with open(os.path.join(session_dir, TOKEN_FILE), "rb") as f:
        return f.read().strip()


def socket_path(session_dir: str, name: str) -> str:
    return os.path.join(_socket_dir(session_dir), name)


def worker_socket_path(session_dir: str, worker_id_hex: str) -> str:
    """Where a worker's (or driver's) core worker listens."""
    return socket_path(session_dir, f"w-{worker_id_hex[:16]}")


def remove_worker_socket(session_dir: str, worker_id_hex: str) -> None:
    """A worker rarely removes its own socket file (it ends with os._exit, or is killed),
    nor does a killed driver: their node does, or a long-lived node's files pile up."""
    with contextlib.suppress(OSError):
        os.unlink(worker_socket_path(session_dir, worker_id_hex))


def remove_socket_dir_if_empty(session_dir: str) -> None:
    """The last daemon of a session to stop removes its short socket directory (each
    removes its own socket first); one still in use stays."""
    sockets = _socket_dir(session_dir)
    if sockets != os.path.join(session_dir, "sockets"):
        with contextlib.suppress(OSError):
            os.rmdir(sockets)


def log_paths(session_dir: str, name: str) -> tuple[str, str]:
    base = os.path.join(session_dir, LOGS_DIR, name)
    return base + ".out", base + ".err"


def worker_log_name(worker_id_hex: str) -> str:
    """The base name of a worker's output files (``.out`` and ``.err``) on its node."""
    return f"{WORKER_LOG_PREFIX}{worker_id_hex[:12]}"


def job_driver_log_name(submission_id: str) -> str:
    """A submitted job's entrypoint output, in the logs directory of the node it runs on."""
    return f"{JOB_DRIVER_LOG_PREFIX}{submission_id}.log"


# A node's daemons, in the order they are stopped: the autoscaler before what it watches,
# the node before the gcs (it stops its workers first).
DAEMONS_IN_STOP_ORDER = ("autoscaler", "dashboard", "node", "gcs")
# How long an autoscaler takes at most to stop the nodes it launched on this machine.
AUTOSCALER_STOP_S = 10.0


def daemon_pids(session_dir: str) -> dict[str, int]:
    """The pids of a session's daemons, by name, from its address file ({} without one)."""
    try:
        with open(os.path.join(session_dir, ADDRESS_FILE)) as f:
            return {k: int(v) for k, v in json.load(f).get("pids", {}).items()}
    except (OSError, ValueError):
        return {}


def is_manta_daemon(pid: int) -> bool:
    """Whether ``pid`` still runs a Manta daemon (not a stranger that reused the pid)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        return b"manta._private" in cmdline or b"manta.dashboard" in cmdline
    except OSError:
        return False


def signal_daemon(pid: int, sig: int) -> None:
    """Send ``sig`` to a session's daemon, if ``pid`` still is one."""
    if not is_manta_daemon(pid):
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def gcs_address_of(info: dict[str, Any]) -> str:
    """Where the gcs is, from a node's address file: its unix socket when on this host."""
    return "unix:" + info["gcs_unix"] if "gcs_unix" in info else str(info["gcs_address"])


def write_json_atomic(path: str, data: dict[str, Any]) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What a core worker needs to join a node: its addresses, store and credentials."""

    session_dir: str
    node_id: bytes
    node_address: str
    gcs_address: str
    arena_path: str
    host: str
    token: bytes
