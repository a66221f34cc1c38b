"""The session directory: where a cluster's logs, sockets, token and address file live.

<tmpdir>/session_<date>_<pid>_<rand>/
    token           the cluster token, mode 0600
    address.json    how to reach the gcs and the head node (written when they are up)
    logs/           one .out/.err pair per process
    sockets/        Unix sockets of the node's processes
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

TOKEN_FILE = "token"
# Written by a worker to its stdout/stderr when the running task changes, so the node
# daemon can label each line with the task that printed it; stripped before drivers see it.
TASK_MARKER = "\x1e:manta-task:"
ADDRESS_FILE = "address.json"


def create_session_dir(tmpdir: str) -> str:
    os.makedirs(tmpdir, mode=0o755, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    path = os.path.join(tmpdir, f"session_{stamp}_{os.getpid()}_{secrets.token_hex(2)}")
    os.makedirs(os.path.join(path, "logs"))
    os.makedirs(os.path.join(path, "sockets"), mode=0o700)
    os.chmod(path, 0o700)
    return path


def write_token(session_dir: str) -> bytes:
    token = secrets.token_hex(32).encode()
    path = os.path.join(session_dir, TOKEN_FILE)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(token)
    return token


def read_token(session_dir: str) -> bytes:
    with open(os.path.join(session_dir, TOKEN_FILE), "rb") as f:
        return f.read().strip()


def socket_path(session_dir: str, name: str) -> str:
    return os.path.join(session_dir, "sockets", name)


def log_paths(session_dir: str, name: str) -> tuple[str, str]:
    base = os.path.join(session_dir, "logs", name)
    return base + ".out", base + ".err"


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
    store_dir: str
    host: str
    token: bytes
