"""The one process context: whether this process is connected, and to what.

``init`` validates everything first, then starts (or finds) a cluster and connects this
process's core worker as a driver. In a worker process the core worker is already
connected by ``worker_main`` and ``init`` is not needed.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import psutil

from manta._private.api.local_cluster import LocalCluster
from manta._private.api.options import validate_runtime_env
from manta._private.common.config import Config
from manta._private.common.session import ADDRESS_FILE, SessionInfo, read_token
from manta._private.common.version import __version__
from manta._private.core_worker import object_ref as object_ref_module
from manta._private.core_worker.core_worker import CoreWorker

logger = logging.getLogger("manta")

# `manta start --head` records the cluster it started here, for init(address="auto").
CURRENT_CLUSTER_FILE = "manta_current_cluster"

_lock = threading.RLock()
_process: _DriverState | None = None
_atexit_registered = False


@dataclass
class _DriverState:
    worker: CoreWorker
    cluster: LocalCluster | None
    context: InitContext


class InitContext(Mapping[str, Any]):
    """What ``init`` returns (Ray's ``RayContext``): addresses of the cluster joined.

    Also a context manager: ``with manta.init(): ...`` shuts down on exit."""

    def __init__(self, address_info: dict[str, Any]) -> None:
        self.address_info = address_info
        self.dashboard_url = address_info.get("webui_url") or ""
        self.python_version = ".".join(map(str, sys.version_info[:3]))
        self.ray_version = __version__
        self.manta_version = __version__
        self.ray_commit = ""

    def __getitem__(self, key: str) -> Any:
        return self.address_info[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.address_info)

    def __len__(self) -> int:
        return len(self.address_info)

    def __enter__(self) -> InitContext:
        return self

    def __exit__(self, *exc: Any) -> None:
        shutdown()

    def disconnect(self) -> None:
        shutdown()

    def __repr__(self) -> str:
        return (
            f"InitContext(address={self.address_info.get('address')!r}, "
            f"session_dir={self.address_info.get('session_dir')!r}, manta_version={self.manta_version!r})"
        )


def current_worker() -> CoreWorker | None:
    return object_ref_module._worker


def is_initialized() -> bool:
    return current_worker() is not None


def ensure_initialized() -> CoreWorker:
    """The connected core worker, starting a local cluster first if there is none (as Ray
    does on the first API call without ``init``)."""
    worker = current_worker()
    if worker is not None:
        return worker
    init()
    worker = current_worker()
    assert worker is not None
    return worker


def require_initialized(what: str) -> CoreWorker:
    worker = current_worker()
    if worker is None:
        from manta.exceptions import RaySystemError

        raise RaySystemError(f"Manta has not been started yet: call manta.init() before {what}.")
    return worker


def init(
    address: str | None = None,
    *,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    resources: dict[str, float] | None = None,
    labels: dict[str, str] | None = None,
    object_store_memory: int | None = None,
    local_mode: bool = False,
    ignore_reinit_error: bool = False,
    include_dashboard: bool | None = None,
    dashboard_host: str = "127.0.0.1",
    dashboard_port: int | None = None,
    job_config: Any = None,
    configure_logging: bool = True,
    logging_level: int | str = logging.INFO,
    logging_format: str | None = None,
    logging_config: Any = None,
    log_to_driver: bool | None = None,
    namespace: str | None = None,
    runtime_env: dict[str, Any] | None = None,
    _temp_dir: str | None = None,
    **kwargs: Any,
) -> InitContext:
    global _process
    with _lock:
        if is_initialized():
            if ignore_reinit_error:
                return _process.context if _process is not None else InitContext({})
            raise RuntimeError(
                "Maybe you called manta.init twice by accident? This error can be suppressed "
                "by passing in 'ignore_reinit_error=True' or by calling 'manta.shutdown()' "
                "prior to 'manta.init()'."
            )
        unknown = set(kwargs) - {"_system_config", "_node_ip_address", "_memory", "_redis_password"}
        if unknown:
            raise TypeError(f"init() got unexpected keyword arguments: {sorted(unknown)}")
        if local_mode:
            warnings.warn("local_mode is not supported by Manta; tasks run in worker processes", stacklevel=2)
        if namespace is not None and not isinstance(namespace, str):
            raise TypeError(f"namespace must be a string, got {type(namespace).__name__}")
        validate_runtime_env(runtime_env)
        config = Config.from_env()
        if _temp_dir:
            config = config.replace(tmpdir=_temp_dir)
        if configure_logging:
            _configure_driver_logging(logging_level, logging_format)
        target = _resolve_address(address, config)
        cluster: LocalCluster | None = None
        if target is None:
            node_resources = _node_resources(num_cpus, num_gpus, resources, object_store_memory)
            _check_labels(labels)
            cluster = LocalCluster(config)
            session = cluster.start(resources=node_resources, labels=dict(labels or {}))
            address_info = _address_info(cluster.session_dir, cluster.info)
        else:
            if num_cpus is not None or num_gpus is not None or resources:
                raise ValueError(
                    "When connecting to an existing cluster, num_cpus, num_gpus and resources "
                    "must not be provided: they are set when the cluster's nodes start."
                )
            session, address_info = _join_existing(target)
        job_cfg: dict[str, Any] = {"runtime_env": runtime_env, "entrypoint": " ".join(sys.argv)}
        worker = CoreWorker(
            is_driver=True,
            config=config,
            session=session,
            namespace=namespace if namespace is not None else _anonymous_namespace(),
            job_config=job_cfg,
            log_to_driver=True if log_to_driver is None else log_to_driver,
        )
        worker.job_runtime_env = runtime_env
        try:
            worker.connect()
        except BaseException:
            worker.shutdown()
            if cluster is not None:
                cluster.stop()
            raise
        context = InitContext(address_info)
        _process = _DriverState(worker, cluster, context)
        _register_atexit()
        return context


def shutdown(_exiting_interpreter: bool = False) -> None:
    """Disconnect this driver and stop the cluster it started (if any)."""
    global _process
    with _lock:
        state, _process = _process, None
        if state is None:
            return
        state.worker.shutdown()
        if state.cluster is not None:
            state.cluster.stop()


def _register_atexit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(shutdown, True)
        _atexit_registered = True


def _configure_driver_logging(level: int | str, fmt: str | None) -> None:
    if any(getattr(h, "_manta", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt or "%(asctime)s %(levelname)s %(name)s -- %(message)s"))
    handler._manta = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def _anonymous_namespace() -> str:
    import uuid

    return str(uuid.uuid4())


def _check_labels(labels: Any) -> None:
    if labels is None:
        return
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise TypeError(f"labels must be a dict of str to str, got {labels!r}")


def _node_resources(
    num_cpus: float | None,
    num_gpus: float | None,
    resources: dict[str, float] | None,
    object_store_memory: int | None,
) -> dict[str, float]:
    for name, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
        ):
            raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    if resources is not None:
        if not isinstance(resources, dict):
            raise TypeError(f"resources must be a dict, got {type(resources).__name__}")
        for key, amount in resources.items():
            if key in ("CPU", "GPU"):
                raise ValueError(
                    "Use the 'num_cpus' and 'num_gpus' keyword instead of 'CPU' and 'GPU' in 'resources' keyword"
                )
            if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
                raise ValueError(f"resource {key!r} must be a non-negative number, got {amount!r}")
    total_memory = psutil.virtual_memory().total
    config = Config.from_env()
    if object_store_memory is None:
        object_store_memory = int(
            min(total_memory * config.object_store_fraction, config.object_store_cap_bytes)
        )
    elif (
        isinstance(object_store_memory, bool)
        or not isinstance(object_store_memory, int)
        or object_store_memory <= 0
    ):
        raise ValueError(
            f"object_store_memory must be a positive number of bytes, got {object_store_memory!r}"
        )
    host = "127.0.0.1"
    result: dict[str, float] = {
        "CPU": float(os.cpu_count() or 1) if num_cpus is None else float(num_cpus),
        "memory": float(max(psutil.virtual_memory().available - object_store_memory, 0) // 1),
        "object_store_memory": float(object_store_memory),
        f"node:{host}": 1.0,
        "node:__internal_head__": 1.0,
    }
    gpus = _detect_gpus() if num_gpus is None else num_gpus
    if gpus:
        result["GPU"] = float(gpus)
    result.update({k: float(v) for k, v in (resources or {}).items()})
    return result


def _detect_gpus() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def _resolve_address(address: str | None, config: Config) -> str | None:
    """None to start a new local cluster; else the session directory to join."""
    if address == "local":
        return None
    if address is None or address == "auto":
        found = config.address or _current_cluster()
        if found:
            return _session_for(found, config)
        if address == "auto":
            raise ConnectionError(
                "Could not find any running Manta instance. Start one with `manta start --head`, "
                "or pass its address to init() or set MANTA_ADDRESS."
            )
        return None
    if not isinstance(address, str):
        raise TypeError(f"address must be a string, got {type(address).__name__}")
    return _session_for(address, config)


def _current_cluster() -> str | None:
    path = os.path.join(Config.from_env().tmpdir, CURRENT_CLUSTER_FILE)
    try:
        with open(path) as f:
            session_dir = f.read().strip()
    except OSError:
        return None
    if not os.path.exists(os.path.join(session_dir, ADDRESS_FILE)):
        return None
    return session_dir


def _session_for(address: str, config: Config) -> str:
    """Find the session directory on this host of the cluster at ``address``."""
    if os.path.isdir(address):
        return address
    tmpdir = config.tmpdir
    try:
        candidates = sorted(os.listdir(tmpdir), reverse=True)
    except OSError:
        candidates = []
    for name in candidates:
        path = os.path.join(tmpdir, name, ADDRESS_FILE)
        try:
            with open(path) as f:
                info = json.load(f)
        except (OSError, ValueError):
            continue
        if address in (info.get("gcs_address"), info.get("address")):
            return os.path.join(tmpdir, name)
    raise ConnectionError(
        f"no Manta cluster with address {address!r} runs on this host. Joining a remote "
        "cluster needs a node on this host: start one with `manta start --address`."
    )


def _join_existing(session_dir: str) -> tuple[SessionInfo, dict[str, Any]]:
    with open(os.path.join(session_dir, ADDRESS_FILE)) as f:
        info = json.load(f)
    pids = info.get("pids", {})
    if pids and not all(psutil.pid_exists(p) for p in pids.values()):
        raise ConnectionError(f"the Manta cluster of {session_dir} is not running any more")
    session = SessionInfo(
        session_dir=session_dir,
        node_id=bytes.fromhex(info["node_id"]),
        node_address="unix:" + info["node_unix"],
        gcs_address="unix:" + info["gcs_unix"],
        store_dir=info["store_dir"],
        host="127.0.0.1",
        token=Config.from_env().auth_token.encode() or read_token(session_dir),
    )
    return session, _address_info(session_dir, info)


def _address_info(session_dir: str, info: dict[str, Any]) -> dict[str, Any]:
    return {
        "node_ip_address": "127.0.0.1",
        "address": info["gcs_address"],
        "gcs_address": info["gcs_address"],
        "session_dir": session_dir,
        "node_id": info["node_id"],
        "raylet_socket_name": info["node_unix"],
        "object_store_address": info["store_dir"],
        "webui_url": "",
    }
