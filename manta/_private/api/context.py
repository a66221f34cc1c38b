"""The one process context: whether this process is connected, and to what.

``init`` validates everything first, then starts (or finds) a cluster and connects this
process's core worker as a driver. In a worker process the core worker is already
connected by ``worker_main`` and ``init`` is not needed.
"""

from __future__ import annotations

import atexit
import importlib
import json
import logging
import os
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from manta._private.api.discovery import address_info as discovery_address_info
from manta._private.api.discovery import join_existing, resolve_address
from manta._private.api.local_cluster import LocalCluster
from manta._private.api.node_resources import node_resources
from manta._private.common.config import Config
from manta._private.common.logging_config import LoggingConfig
from manta._private.common.session import SessionInfo
from manta._private.common.version import __version__
from manta._private.core_worker import object_ref as object_ref_module
from manta._private.rpc import tls
from manta._private.runtime_env.resolve import merge
from manta._private.runtime_env.validation import validate_runtime_env
from manta.exceptions import RaySystemError

if TYPE_CHECKING:
    from manta._private.core_worker.core_worker import CoreWorker

logger = logging.getLogger("manta")


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
        _check_arguments(kwargs, namespace, runtime_env, labels, logging_config, job_config)
        config = Config.from_env().with_system_config(kwargs.get("_system_config") or {})
        job_env = _job_runtime_env(runtime_env, job_config, config)
        config = config.replace(tmpdir=_temp_dir) if _temp_dir else config
        tls.use(config)  # ValueError naming the setting when its files cannot be loaded
        if configure_logging:
            _configure_driver_logging(logging_level, logging_format)
        driver = _driver_options(namespace, job_config, job_env, config, logging_config, local_mode)
        if (remote := remote_address(address, config)) is not None:
            _check_joining(num_cpus, num_gpus, resources, object_store_memory, kwargs.get("_system_config"))
            worker, cluster, address_info = _connect_remote(remote, config, job_env, log_to_driver, driver)
        else:
            cluster, session, address_info = _start_or_join(
                address,
                config,
                num_cpus,
                num_gpus,
                resources,
                labels,
                object_store_memory,
                kwargs.get("_system_config"),
                _dashboard(include_dashboard, dashboard_host, dashboard_port),
            )
            worker = _connect_driver(config, session, cluster, job_env, log_to_driver, driver)
        _process = _DriverState(worker, cluster, InitContext(address_info))
        _register_atexit()
        return _process.context


def _connect_driver(
    config: Config,
    session: SessionInfo,
    cluster: LocalCluster | None,
    job_env: dict[str, Any] | None,
    log_to_driver: bool | None,
    options: dict[str, Any],
) -> CoreWorker:
    """This process's core worker, connected, with the job's runtime env in place; on a
    failure the cluster ``init`` started is stopped again."""
    # Imported while the daemons started (see _start_or_join), not before.
    from manta._private.api import runtime_env as runtime_env_module
    from manta._private.core_worker.core_worker import CoreWorker
    from manta._private.core_worker.job_logging import apply_job_logging

    worker = CoreWorker(
        is_driver=True,
        config=config,
        session=session,
        log_to_driver=True if log_to_driver is None else log_to_driver,
        **options,
    )
    try:
        worker.connect()
        # The job's logging_config, here as in each of its workers (Manta's lines too).
        apply_job_logging(worker, options["job_config"].get("logging_config"), own_logger="manta")
        worker.job_runtime_env = runtime_env_module.resolve(worker, job_env)
        _install_eagerly(worker.job_runtime_env)
    except BaseException:
        worker.shutdown()
        if cluster is not None:
            cluster.stop()
        raise
    return worker


def attach_driver(session_dir: str, options: dict[str, Any], config: Config) -> CoreWorker:
    """Make this process a driver of the cluster whose node's session is ``session_dir``,
    with job settings made elsewhere: a remote driver's session, whose client made them."""
    global _process
    with _lock:
        session, info = join_existing(session_dir)
        log_to_driver = bool(options.pop("log_to_driver", True))
        worker = _connect_driver(config, session, None, None, log_to_driver, {**options, "local_mode": False})
        _process = _DriverState(worker, None, InitContext(info))
        return worker


def _job_runtime_env(runtime_env: Any, job_config: Any, config: Config) -> dict[str, Any] | None:
    """The job's runtime env: init's, else its JobConfig's, merged (as a task's is over
    its job's) over the one a submitted job was submitted with, in its entrypoint."""
    own = runtime_env if runtime_env is not None else getattr(job_config, "runtime_env", None)
    submitted = json.loads(config.job_runtime_env) if config.job_runtime_env else None
    return merge(submitted or None, own)


def _prepare_runtime_env() -> None:
    """A task that does nothing: running it sets its runtime env up on a node."""


def _install_eagerly(env: dict[str, Any] | None) -> None:
    """Start setting the job's runtime env up now (as Ray does unless ``config.eager_install``
    is False) rather than when its first task arrives: a 0-CPU task in that env, not
    waited for (a failure is reported as its unhandled error)."""
    if not env or not any(env.get(k) for k in ("pip", "uv", "working_dir", "py_modules")):
        return
    if (env.get("config") or {}).get("eager_install", True) is False:
        return
    from manta._private.api.remote_function import remote

    remote(num_cpus=0, max_retries=0)(_prepare_runtime_env).remote()


def _driver_options(
    namespace: str | None,
    job_config: Any,
    job_env: dict[str, Any] | None,
    config: Config,
    logging_config: LoggingConfig | None,
    local_mode: bool,
) -> dict[str, Any]:
    """The driver core worker's settings: its namespace and job (see ``_job_settings``)."""
    settings = _job_settings(job_config, job_env, config.job_submission_id, logging_config)
    return dict(namespace=_namespace(namespace, job_config), job_config=settings, local_mode=local_mode)


def _namespace(namespace: str | None, job_config: Any) -> str:
    if namespace is None:
        namespace = getattr(job_config, "ray_namespace", None)
    return namespace if namespace is not None else str(uuid.uuid4())


def _job_settings(
    job_config: Any,
    runtime_env: dict[str, Any] | None,
    submission_id: str = "",
    logging_config: LoggingConfig | None = None,
) -> dict[str, Any]:
    """What the job is registered with: its runtime env (see ``_job_runtime_env``), the
    JobConfig's code search path ahead of the driver's sys.path, its metadata, the
    submitted job it runs for (if any), and its logging_config (its workers apply it)."""
    settings: dict[str, Any] = {"runtime_env": runtime_env, "entrypoint": " ".join(sys.argv)}
    if submission_id:
        settings["submission_id"] = submission_id
    if logging_config is not None:
        settings["logging_config"] = logging_config.to_dict()
    if job_config is None:
        return settings
    search = [os.path.abspath(p) for p in getattr(job_config, "code_search_path", [])]
    if search:
        settings["sys_path"] = search + [p for p in sys.path if p and p not in search]
    settings["metadata"] = dict(getattr(job_config, "metadata", {}) or {})
    return settings


def _check_arguments(
    kwargs: dict[str, Any],
    namespace: Any,
    runtime_env: Any,
    labels: Any,
    logging_config: Any = None,
    job_config: Any = None,
) -> None:
    """Everything init() can check before it starts anything."""
    validate_runtime_env(getattr(job_config, "runtime_env", None))
    unknown = set(kwargs) - {"_system_config", "_node_ip_address", "_memory", "_redis_password"}
    if unknown:
        raise TypeError(f"init() got unexpected keyword arguments: {sorted(unknown)}")
    if namespace is not None and not isinstance(namespace, str):
        raise TypeError(f"namespace must be a string, got {type(namespace).__name__}")
    validate_runtime_env(runtime_env)
    if labels is not None and (
        not isinstance(labels, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())
    ):
        raise TypeError(f"labels must be a dict of str to str, got {labels!r}")
    if logging_config is not None and not isinstance(logging_config, LoggingConfig):
        raise TypeError(f"logging_config must be a manta.LoggingConfig, got {type(logging_config).__name__}")


def _start_or_join(
    address: str | None,
    config: Config,
    num_cpus: float | None,
    num_gpus: float | None,
    resources: dict[str, float] | None,
    labels: dict[str, str] | None,
    object_store_memory: int | None,
    system_config: dict[str, Any] | None = None,
    dashboard: tuple[str, int] | None = None,
) -> tuple[LocalCluster | None, SessionInfo, dict[str, Any]]:
    """Start a private cluster, or find the running one ``address`` names."""
    target = resolve_address(address, config)
    if target is None:
        offered = node_resources(num_cpus, num_gpus, resources, object_store_memory)
        cluster = LocalCluster(config)
        session = cluster.start(
            resources=offered,
            labels=dict(labels or {}),
            dashboard=dashboard,
            # The driver's own imports (the core worker, the longest) run beside the daemons'.
            while_starting=lambda: importlib.import_module("manta._private.core_worker.core_worker"),
        )
        return cluster, session, discovery_address_info(cluster.session_dir, cluster.info)
    _check_joining(num_cpus, num_gpus, resources, object_store_memory, system_config)
    session, info = join_existing(target)
    return None, session, info


def _check_joining(
    num_cpus: float | None,
    num_gpus: float | None,
    resources: dict[str, float] | None,
    object_store_memory: int | None,
    system_config: dict[str, Any] | None,
) -> None:
    if num_cpus is not None or num_gpus is not None or resources:
        raise ValueError(
            "When connecting to an existing cluster, num_cpus, num_gpus and resources "
            "must not be provided: they are set when the cluster's nodes start."
        )
    if object_store_memory is not None:
        raise ValueError("When connecting to an existing cluster, object_store_memory must not be provided.")
    if system_config:
        raise ValueError(
            "When connecting to an existing cluster, _system_config must not be provided: it "
            "is set when the cluster's head starts."
        )


def is_remote(address: Any) -> bool:
    """Whether ``address`` names a head's client port (a remote driver's way in)."""
    return isinstance(address, str) and address.startswith(REMOTE_SCHEMES)


def remote_address(address: Any, config: Config) -> str | None:
    """The head's client port this driver is to reach the cluster through: ``address``, or
    with none (or "auto") given, MANTA_ADDRESS (as Ray's RAY_ADDRESS=ray://...); else None."""
    if address is None or address == "auto":
        address = config.address
    return address if is_remote(address) else None


# A remote driver's address: manta://HOST[:PORT], or ray://HOST[:PORT] as Ray Client's.
REMOTE_SCHEMES = ("manta://", "ray://")
DEFAULT_CLIENT_PORT = 10001


def _connect_remote(
    address: str,
    config: Config,
    job_env: dict[str, Any] | None,
    log_to_driver: bool | None,
    options: dict[str, Any],
) -> tuple[Any, None, dict[str, Any]]:
    """A remote driver: a session on the head at ``address`` owns what this process makes;
    this process's local directories in ``job_env`` are uploaded through it."""
    from manta._private.api import remote_driver
    from manta._private.api import runtime_env as runtime_env_module

    target = address.split("://", 1)[1].rstrip("/")
    if not target or target.startswith(":"):
        raise ValueError(f"{address!r} names no host: use manta://HOST[:PORT]")
    if ":" not in target.rsplit("]", 1)[-1]:
        target = f"{target}:{DEFAULT_CLIENT_PORT}"
    token = config.auth_token.encode()
    if not token:
        raise ValueError(
            f"connecting to {address} needs a token: set MANTA_AUTH_TOKEN to the cluster's token "
            "or to one `manta token create --role submit` issued"
        )
    if options.get("local_mode"):
        raise ValueError("local_mode runs tasks in this process: it cannot be used with a remote cluster")
    # The job's env goes with each submission once uploaded (below); code search paths name
    # this machine's directories, which the cluster's workers do not have.
    job_settings = {k: v for k, v in options["job_config"].items() if k not in ("runtime_env", "sys_path")}
    session_options = {"namespace": options["namespace"], "job_config": job_settings}
    session_options["log_to_driver"] = True if log_to_driver is None else log_to_driver
    driver = remote_driver.connect(target, token, config, session_options)
    try:
        driver.job_runtime_env = runtime_env_module.resolve(driver, job_env)  # type: ignore[arg-type]
    except BaseException:
        driver.shutdown()
        raise
    return (
        driver,
        None,
        {"address": address, "node_id": driver.node_id.hex(), "session_dir": driver.session.session_dir},
    )


# The dashboard's port when init() is not told one; taken, another free port is used.
DEFAULT_DASHBOARD_PORT = 8265


def _dashboard(include: bool | None, host: str, port: int | None) -> tuple[str, int] | None:
    """Where a private cluster's HTTP service listens: only when asked for (Ray starts one
    by default; Manta's init stays lean), on ``port``, or on 8265 when free."""
    if not include:
        return None
    if port is not None and (not isinstance(port, int) or not 0 <= port < 65536):
        raise ValueError(f"dashboard_port must be a port number (0 for any free one), got {port!r}")
    return host, -DEFAULT_DASHBOARD_PORT if port is None else port


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
