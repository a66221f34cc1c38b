"""The one configuration of Manta.

Every tunable lives in ``Config`` with its default and the reason for it. ``MANTA_<NAME>``
environment variables (upper-case field names) override defaults; this module is the only
place in the package that reads them. Daemons receive the driver's values explicitly, so a
cluster behaves the same whatever environment each process happens to start in.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, fields
from typing import Any

PROTOCOL_VERSION = 2


@dataclass(frozen=True, slots=True)
class Config:
    # Where session directories go (logs, sockets, the token).
    tmpdir: str = "/tmp/manta-sessions"
    # Values smaller than this travel inside task specs and replies and live in the
    # owner's memory; larger ones go to the node's shared-memory store.
    max_inline_bytes: int = 100 * 1024
    # Largest RPC frame a peer may send after the handshake; before it, 64 KiB.
    max_frame_bytes: int = 1 << 30
    # How long an owner keeps an idle worker lease before returning it. A short linger
    # lets a submit-get loop reuse its worker instead of paying a lease round trip per task.
    lease_linger_s: float = 0.05
    # Most lease requests an owner keeps outstanding per scheduling class.
    max_pending_leases_per_class: int = 10
    # A task whose function historically runs shorter than this may be queued on a busy
    # worker (pipelined) to hide the round trip; longer ones wait for a free worker so a
    # slow task never holds a fast one hostage.
    pipeline_below_s: float = 0.002
    # A pipelined task still waiting behind a running one after this long is sent back to
    # its owner to run elsewhere (the running one was slower than predicted, or blocked).
    pipeline_requeue_after_s: float = 0.02
    # Tasks queued on one worker at most when pipelining (fewer for slower functions: see
    # lease_policy.pipeline_depth). 64 no-op tasks are 1-2 ms of a worker's time here;
    # that many in flight let both ends read and answer them in batches (no-op tasks on
    # two workers: 16 gave 17-19k/s, 64 gave 21-22k/s; docs/benchmarks.md, 2026-12-07 (third)).
    max_tasks_in_flight_per_worker: int = 64
    # Default retries for a task whose worker dies.
    task_max_retries: int = 3
    # Node daemon -> gcs heartbeat period, and how long the gcs waits before declaring a
    # silent node dead.
    heartbeat_interval_s: float = 1.0
    node_timeout_s: float = 10.0
    # How long node daemons and drivers keep trying to reach the gcs (joining, or after
    # losing it to a restart) before they give up; a node daemon then exits.
    gcs_reconnect_timeout_s: float = 60.0
    # How often the node daemon forwards new worker output to drivers.
    log_poll_interval_s: float = 0.1
    # How often a process reports its task events to the gcs; events a process holds at
    # most before it drops (and counts) new ones; task attempts the gcs's store keeps
    # (the oldest go first). Ray's names for the last.
    task_events_report_interval_s: float = 0.1
    task_events_max_buffered: int = 100_000
    task_events_max_num_task_in_gcs: int = 100_000
    # A get() still blocked after this long logs, once, why its object is not there yet
    # (the state API's explain()); 0 turns that off.
    get_warning_threshold_s: float = 30.0
    # How often a process sends the user metrics it recorded (manta.util.metrics) to its
    # node daemon (Ray's metrics_report_interval_ms); how often the head's HTTP service
    # samples the cluster's metrics, and how far back it keeps them, for the dashboard's charts.
    metrics_report_interval_s: float = 5.0
    metrics_history_interval_s: float = 5.0
    metrics_history_s: float = 3600.0
    # The cycle collector's first threshold in drivers and workers while connected (0:
    # leave Python's 700, which collects every ~70 submitted tasks; see common/gc_pace.py).
    gc_threshold: int = 7000
    # Idle workers above the node's CPU count are stopped after this long.
    idle_worker_timeout_s: float = 5.0
    # Workers the node keeps starting at once.
    max_starting_workers: int = 4
    # Objects a node daemon pulls from other nodes at once; more wait their turn.
    max_concurrent_pulls: int = 4
    # Where primary copies go when the object store is full (default: <session>/spill).
    spill_dir: str = ""
    # How long a put waits for room in a full store (readers unpinning, owners freeing,
    # spills finishing) before it fails with ObjectStoreFullError.
    store_full_timeout_s: float = 10.0
    # The node memory monitor: when the node's memory in use (its container's limit, if
    # it runs in one, else the host's RAM) reaches this fraction, the node daemon kills the
    # worker of the newest task (actors last) before the kernel's OOM killer picks a victim
    # at random; the task fails with OutOfMemoryError once its retries are spent. Checked
    # every memory_monitor_refresh_ms; 0 turns the monitor off.
    memory_usage_threshold: float = 0.95
    memory_monitor_refresh_ms: int = 250
    # Default object store size when init() does not say: a fraction of RAM, capped.
    object_store_fraction: float = 0.3
    object_store_cap_bytes: int = 200 * 1024**3
    # Address of an existing cluster to join when init() is given none.
    address: str = ""
    # The head of a ``cluster_utils.Cluster`` running in this process (or its parent): what
    # init(address="auto") joins, as in Ray; init() with no address starts its own.
    cluster_address: str = ""
    # Record where each put/remote call was made (ObjectRef.call_site(), `manta memory`).
    record_callsites: bool = False
    # Whether an ObjectRef may be pickled outside Manta (plain pickle, cloudpickle). Such a
    # ref keeps its object until a process loads it; switch off to find where it happens.
    allow_out_of_band_object_ref_serialization: bool = True
    # Whether the error of a failed task whose ref is dropped without a get goes unreported
    # (by default it is logged once, with its traceback, as Ray does).
    ignore_unhandled_errors: bool = False
    # The session directory of the node a driver joins through, when several nodes of its
    # cluster run on this host: set for a submitted job's entrypoint (the node it was
    # placed on), where the cluster's address alone would pick the head.
    node_session_dir: str = ""
    # A submitted job still PENDING after this long (no node can give it its entrypoint
    # resources, or its runtime env takes that long to set up) fails, as in Ray.
    job_start_timeout_s: float = 900.0
    # The submission id of the job whose entrypoint this driver is (set by its supervisor):
    # recorded with the driver's job, so the jobs API links the two.
    job_submission_id: str = ""
    # A submitted job's runtime env (JSON), set by its supervisor for the entrypoint: what
    # init() there gives the job when it is given none itself.
    job_runtime_env: str = ""
    # The cluster token, when it is not in this host's session directory.
    auth_token: str = ""
    # The autoscaler's rounds (Ray's AUTOSCALER_UPDATE_INTERVAL_S), and how long a node it
    # launched may take to join before it is terminated as failed.
    autoscaler_update_interval_s: float = 5.0
    autoscaler_join_timeout_s: float = 300.0
    # TLS for every TCP channel (RPC, object transfers, HTTP), on when all three are set:
    # the cluster CA's certificate, and this node's certificate and key signed by it.
    # Peers must present a certificate signed by the CA (mutual TLS); Unix sockets, which
    # only this user on this host can open, stay plain.
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    # The name a client checks every server's certificate against, instead of the address
    # it dialled: one certificate for that DNS name then serves every node (on Kubernetes,
    # pods are dialled by IPs no one knows in advance). Empty: the dialled address.
    tls_server_name: str = ""
    # Live actors one job may have at once across the cluster (0: no limit); more are
    # refused at creation with an error that says so. Read by the gcs.
    max_actors_per_job: int = 0
    # Requests a second one token (or, before it is known, one address) may make of the
    # HTTP service on average; twice as many may come in a burst. More get 429.
    http_requests_per_s: float = 100.0
    # Host names (comma-separated) the HTTP service answers to besides IP addresses,
    # localhost and this host's own names: any other Host header is refused, so a web
    # page cannot reach the service through a DNS name that points at it (DNS rebinding).
    dashboard_allowed_hosts: str = ""
    # How long the head keeps a remote driver's session (its objects, its actors) after
    # its connection drops, for it to come back; then everything the session owned goes.
    client_grace_s: float = 30.0
    # A remote driver pings the head this often; a side that hears nothing from the other
    # for three times as long takes the connection for dead (a cable pulled sends no reset).
    client_heartbeat_s: float = 5.0
    # Remote drivers' sessions the head runs at once (each is a process).
    max_client_sessions: int = 64
    # Log level of daemons.
    log_level: str = "INFO"
    # Log files of workers and daemons are rotated when they reach rotation_max_bytes,
    # keeping rotation_backup_count older ones (name.1 the newest); either 0: never rotated
    # (Python's RotatingFileHandler's rule). Ray's names and defaults.
    rotation_max_bytes: int = 512 * 1024**2
    rotation_backup_count: int = 5
    # A driver collapses a line that many workers print alike (numbers aside) within
    # dedup_logs_agg_window_s into one "[repeated Nx across cluster]" line; lines matching
    # the allow regex are always printed, those matching the skip regex never. Ray's names.
    dedup_logs: bool = True
    dedup_logs_agg_window_s: float = 5.0
    dedup_logs_allow_regex: str = ""
    dedup_logs_skip_regex: str = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", "float") and not (
                isinstance(value, (int, float)) and math.isfinite(value) and value >= _LOWEST.get(f.name, 0)
            ):
                raise ValueError(
                    f"{_where(f.name)} must be a number of at least {_LOWEST.get(f.name, 0)}, got {value!r}"
                )
        if self.memory_usage_threshold > 1:
            raise ValueError(
                f"{_where('memory_usage_threshold')} must be at most 1, got {self.memory_usage_threshold}"
            )
        if self.object_store_fraction > 1:
            raise ValueError(
                f"{_where('object_store_fraction')} must be at most 1, got {self.object_store_fraction}"
            )
        if self.log_level.upper() not in _LOG_LEVELS:
            raise ValueError(
                f"{_where('log_level')} must be one of {', '.join(_LOG_LEVELS)}, got {self.log_level!r}"
            )
        for name in ("dedup_logs_allow_regex", "dedup_logs_skip_regex"):
            # Refused here, once, rather than in every driver's log printer.
            try:
                re.compile(getattr(self, name))
            except re.error as e:
                raise ValueError(
                    f"{_where(name)} must be a regular expression, got {getattr(self, name)!r}: {e}"
                ) from None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Config:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(env_name(f.name))
            if raw is None and f.name in _RAY_ENV_NAMES:
                raw = env.get(_RAY_ENV_NAMES[f.name])
            if raw is not None:
                values[f.name] = _parse(f.name, f.type, raw)
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def with_system_config(self, system_config: dict[str, Any]) -> Config:
        """This config with ``init``'s ``_system_config`` applied: Manta's own field names,
        and the Ray settings that have a Manta equivalent (others are ignored: they tune
        parts of Ray that Manta does not have)."""
        known = {f.name for f in fields(self)}
        changes: dict[str, Any] = {}
        for key, value in system_config.items():
            if key in known:
                changes[key] = value
            elif key in _RAY_SETTINGS:
                name, scale = _RAY_SETTINGS[key]
                changes[name] = max(value * scale, _LOWEST.get(name, 0))
        return self.replace(**changes)


# Fields that must be above zero (or may be -1), where the rest only may not be negative.
_LOWEST: dict[str, float] = {
    "http_requests_per_s": 0.01,
    "max_inline_bytes": 1,
    "max_frame_bytes": 64 * 1024,
    "max_pending_leases_per_class": 1,
    "max_tasks_in_flight_per_worker": 1,
    "task_max_retries": -1,
    "heartbeat_interval_s": 0.01,
    "node_timeout_s": 0.01,
    "log_poll_interval_s": 0.01,
    "metrics_report_interval_s": 0.01,
    "metrics_history_interval_s": 0.01,
    "max_starting_workers": 1,
    "max_concurrent_pulls": 1,
    "object_store_fraction": 0.001,
    "memory_usage_threshold": 0.01,
    "object_store_cap_bytes": 1,
}
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Ray's environment variables that Ray programs set, read when Manta's own is not set.
_RAY_ENV_NAMES = {
    "ignore_unhandled_errors": "RAY_IGNORE_UNHANDLED_ERRORS",
    "job_start_timeout_s": "RAY_JOB_START_TIMEOUT_SECONDS",
    "tls_ca": "RAY_TLS_CA_CERT",
    "tls_cert": "RAY_TLS_SERVER_CERT",
    "tls_key": "RAY_TLS_SERVER_KEY",
    "rotation_max_bytes": "RAY_ROTATION_MAX_BYTES",
    "rotation_backup_count": "RAY_ROTATION_BACKUP_COUNT",
    "dedup_logs": "RAY_DEDUP_LOGS",
    "dedup_logs_agg_window_s": "RAY_DEDUP_LOGS_AGG_WINDOW_S",
    "dedup_logs_allow_regex": "RAY_DEDUP_LOGS_ALLOW_REGEX",
    "dedup_logs_skip_regex": "RAY_DEDUP_LOGS_SKIP_REGEX",
}
# Ray's _system_config names with a Manta equivalent: (field, factor to Manta's unit).
# Values below a field's lowest are raised to it (Ray's 0 for "never inline" is our 1).
_RAY_SETTINGS: dict[str, tuple[str, float]] = {
    "health_check_timeout_ms": ("node_timeout_s", 0.001),
    "health_check_period_ms": ("heartbeat_interval_s", 0.001),
    "max_direct_call_object_size": ("max_inline_bytes", 1),
    "worker_lease_timeout_milliseconds": ("lease_linger_s", 0.001),
    "metrics_report_interval_ms": ("metrics_report_interval_s", 0.001),
}


def ray_jobs_address(environ: dict[str, str] | None = None) -> str:
    """Where Ray's job tools look for the jobs API when Manta's MANTA_ADDRESS is unset."""
    env = os.environ if environ is None else environ
    return env.get("RAY_API_SERVER_ADDRESS", "") or env.get("RAY_ADDRESS", "")


def env_name(name: str) -> str:
    """The environment variable that sets ``name``."""
    return "MANTA_" + name.upper()


def _where(name: str) -> str:
    return f"the setting {name} ({env_name(name)})"


def _parse(name: str, type_name: Any, raw: str) -> Any:
    kind = type_name if isinstance(type_name, str) else type_name.__name__
    try:
        if kind == "bool":
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise ValueError(f"environment variable MANTA_{name.upper()}={raw!r} is not a valid {kind}") from None
    return raw
