"""Finding a running cluster on this host and what a driver needs to join it.

``manta start`` records its session directory in ``<tmpdir>/manta_current_cluster``;
init() with no address (or "auto") joins that cluster, "local" never does, and an explicit
"host:port" is matched against the address files of this host's sessions. The CLI also
finds the private clusters drivers started with init() (``latest_cluster``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import psutil

from manta._private.common.config import Config
from manta._private.common.session import ADDRESS_FILE, TOKEN_FILE, SessionInfo, gcs_address_of, read_token

CURRENT_CLUSTER_FILE = "manta_current_cluster"


def resolve_address(address: str | None, config: Config) -> str | None:
    """None to start a new local cluster; else the session directory to join."""
    if address == "local":
        return None
    if address is None or address == "auto":
        found = config.address or (config.cluster_address if address == "auto" else "") or current_cluster()
        if found and config.node_session_dir and os.path.isdir(config.node_session_dir):
            return config.node_session_dir
        if found:
            return session_for(found, config)
        if address == "auto":
            raise ConnectionError(
                "Could not find any running Manta instance. Start one with `manta start --head`, "
                "or pass its address to init() or set MANTA_ADDRESS."
            )
        return None
    if not isinstance(address, str):
        raise TypeError(f"address must be a string, got {type(address).__name__}")
    return session_for(address, config)


def current_cluster() -> str | None:
    path = os.path.join(Config.from_env().tmpdir, CURRENT_CLUSTER_FILE)
    try:
        with open(path) as f:
            session_dir = f.read().strip()
    except OSError:
        return None
    if not os.path.exists(os.path.join(session_dir, ADDRESS_FILE)):
        return None
    return session_dir


def latest_cluster(config: Config) -> str | None:
    """The session directory of the newest cluster running on this host that a tool may
    inspect: one `manta start` began, or a driver's private one (as `ray status` finds the
    cluster of a `ray.init()`); nodes that joined a cluster count only when `manta start`
    recorded them. None when nothing runs."""
    current = current_cluster()
    found = [path for path, info in running_sessions(config) if info.get("role") == "head" or path == current]
    # The token is written once, as the session starts (address.json is rewritten when a
    # daemon restarts): its age orders the sessions.
    return max(found, key=_started_at, default=None)


def running_sessions(config: Config) -> Iterator[tuple[str, dict[str, Any]]]:
    """The sessions of this host whose daemons run, newest first, with their address files."""
    for name in sorted(_session_names(config.tmpdir), reverse=True):
        path = os.path.join(config.tmpdir, name)
        info = _address_info(path)
        if info is not None and _running(info):
            yield path, info


def _session_names(tmpdir: str) -> list[str]:
    try:
        return [name for name in os.listdir(tmpdir) if name.startswith("session_")]
    except OSError:
        return []


def _address_info(session_dir: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(session_dir, ADDRESS_FILE)) as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _started_at(session_dir: str) -> float:
    try:
        return os.stat(os.path.join(session_dir, TOKEN_FILE)).st_mtime
    except OSError:
        return 0.0


def session_for(address: str, config: Config) -> str:
    """Find the session directory on this host of the cluster at ``address``."""
    if os.path.isdir(address):
        return address
    tmpdir = config.tmpdir
    try:
        candidates = sorted(os.listdir(tmpdir), reverse=True)
    except OSError:
        candidates = []
    matches = []
    for name in candidates:
        path = os.path.join(tmpdir, name, ADDRESS_FILE)
        try:
            with open(path) as f:
                info = json.load(f)
        except (OSError, ValueError):
            continue
        if address in (info.get("gcs_address"), info.get("address")) and _running(info):
            matches.append((info.get("role") != "head", os.path.join(tmpdir, name)))
    if matches:
        # The head's session when it runs here (drivers attach to the head node, as in
        # Ray), else the newest node of that cluster on this host.
        return min(matches, key=lambda m: m[0])[1]
    raise ConnectionError(
        f"no Manta cluster with address {address!r} runs on this host. Joining a remote "
        "cluster needs a node on this host: start one with `manta start --address`."
    )


def join_existing(session_dir: str) -> tuple[SessionInfo, dict[str, Any]]:
    with open(os.path.join(session_dir, ADDRESS_FILE)) as f:
        info = json.load(f)
    if not _running(info):
        raise ConnectionError(f"the Manta cluster of {session_dir} is not running any more")
    session = SessionInfo(
        session_dir=session_dir,
        node_id=bytes.fromhex(info["node_id"]),
        node_address="unix:" + info["node_unix"],
        gcs_address=gcs_address_of(info),
        arena_path=info["arena_path"],
        host=info.get("host", "127.0.0.1"),
        token=Config.from_env().auth_token.encode() or read_token(session_dir),
    )
    return session, address_info(session_dir, info)


def _running(info: dict[str, Any]) -> bool:
    # A driver joins through the node daemon: while it lives, the cluster runs. A gcs being
    # restarted (its new pid not yet written) is reconnected to by the driver as by the
    # node; the HTTP service is not needed to run work at all.
    pids = info.get("pids", {})
    if "node" in pids:
        return psutil.pid_exists(pids["node"])
    return all(psutil.pid_exists(p) for name, p in pids.items() if name != "dashboard")


def address_info(session_dir: str, info: dict[str, Any]) -> dict[str, Any]:
    return {
        "node_ip_address": info.get("host", "127.0.0.1"),
        "address": info["gcs_address"],
        "gcs_address": info["gcs_address"],
        "session_dir": session_dir,
        "node_id": info["node_id"],
        "raylet_socket_name": info["node_unix"],
        "object_store_address": info["arena_path"],
        "webui_url": info.get("dashboard_url", ""),
    }
