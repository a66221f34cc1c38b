"""The state API's records (Ray's ``ray.util.state.common``) and the pure rules every
listing follows: which columns a filter may name, how it compares, the ``limit`` cap,
which fields only ``detail=True`` fills in, and how actors and objects are summarized.

A listing is gathered as plain dicts (JSON-safe, every field), filtered and cut here,
then turned into these dataclasses: the same steps in a driver, the CLI and the head's
HTTP routes, so the three cannot disagree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from manta._private.common import task_events as te
from manta.job_submission.models import JobDetails

DEFAULT_LIMIT = 100
# What a listing returns at most, whatever ``limit`` asks (Ray's cap too).
MAX_LIMIT = te.MAX_LIMIT
FILTER_OPS = te.FILTER_OPS
Filter = tuple[str, str, Any]


class ReadAsDict:
    """Records read as dicts too (``record["state"]``), as Ray's can."""

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


# Marks a field only ``detail=True`` fills in (None otherwise, as Ray's are).
_DETAIL = {"detail": True}


@dataclass(frozen=True)
class ActorState(ReadAsDict):
    """An actor, alive or dead."""

    actor_id: str
    class_name: str
    state: str  # DEPENDENCIES_UNREADY, PENDING_CREATION, ALIVE, RESTARTING, DEAD
    job_id: str
    name: str
    node_id: str | None
    pid: int | None
    ray_namespace: str
    serialized_runtime_env: str | None = field(default=None, metadata=_DETAIL)
    required_resources: dict[str, float] | None = field(default=None, metadata=_DETAIL)
    death_cause: str | None = field(default=None, metadata=_DETAIL)
    is_detached: bool | None = field(default=None, metadata=_DETAIL)
    placement_group_id: str | None = field(default=None, metadata=_DETAIL)
    repr_name: str | None = field(default=None, metadata=_DETAIL)
    num_restarts: int | None = field(default=None, metadata=_DETAIL)
    num_restarts_due_to_lineage_reconstruction: int | None = field(default=None, metadata=_DETAIL)
    num_restarts_due_to_node_preemption: int | None = field(default=None, metadata=_DETAIL)
    call_site: str | None = field(default=None, metadata=_DETAIL)
    label_selector: dict[str, str] | None = field(default=None, metadata=_DETAIL)


@dataclass(frozen=True)
class NodeState(ReadAsDict):
    """A node that joined the cluster, alive or dead."""

    node_id: str
    node_ip: str
    is_head_node: bool
    state: str  # ALIVE or DEAD
    state_message: str | None
    node_name: str
    resources_total: dict[str, float]
    labels: dict[str, str]
    start_time_ms: int | None = field(default=None, metadata=_DETAIL)
    end_time_ms: int | None = field(default=None, metadata=_DETAIL)


@dataclass(frozen=True)
class WorkerState(ReadAsDict):
    """A worker or driver process, running or recently ended."""

    worker_id: str
    is_alive: bool
    worker_type: str  # WORKER or DRIVER
    exit_type: (
        str | None
    )  # SYSTEM_ERROR, INTENDED_SYSTEM_EXIT, USER_ERROR, INTENDED_USER_EXIT, NODE_OUT_OF_MEMORY
    node_id: str
    ip: str
    pid: int
    exit_detail: str | None = field(default=None, metadata=_DETAIL)
    worker_launch_time_ms: int | None = field(default=None, metadata=_DETAIL)
    worker_launched_time_ms: int | None = field(default=None, metadata=_DETAIL)
    start_time_ms: int | None = field(default=None, metadata=_DETAIL)
    end_time_ms: int | None = field(default=None, metadata=_DETAIL)
    debugger_port: int | None = field(default=None, metadata=_DETAIL)
    num_paused_threads: int | None = field(default=None, metadata=_DETAIL)


@dataclass(frozen=True)
class PlacementGroupState(ReadAsDict):
    placement_group_id: str
    name: str
    creator_job_id: str | None
    state: str  # PENDING, CREATED, RESCHEDULING, REMOVED
    bundles: list[dict[str, Any]] | None = field(default=None, metadata=_DETAIL)
    is_detached: bool | None = field(default=None, metadata=_DETAIL)
    stats: dict[str, Any] | None = field(default=None, metadata=_DETAIL)


@dataclass(frozen=True)
class ObjectState(ReadAsDict):
    """One process's reference to an object."""

    object_id: str
    object_size: int
    task_status: str  # "FINISHED" once the value exists, else "PENDING"
    attempt_number: int
    reference_type: str  # LOCAL_REFERENCE, USED_BY_PENDING_TASK, CAPTURED_IN_OBJECT, ...
    call_site: str
    type: str  # "DRIVER" or "WORKER"
    pid: int
    ip: str


@dataclass(frozen=True)
class RuntimeEnvState(ReadAsDict):
    """A runtime env a node's workers set up (one record per env and node)."""

    runtime_env: dict[str, Any]
    success: bool
    creation_time_ms: int | None
    node_id: str
    ref_cnt: int | None = field(default=None, metadata=_DETAIL)  # workers running in it
    error: str | None = field(default=None, metadata=_DETAIL)


@dataclass
class JobState(JobDetails, ReadAsDict):
    """A job: one a driver started by hand (``type`` DRIVER) or one submitted to the head
    (SUBMISSION): the jobs API's record (``status`` a JobStatus, ``driver_info`` a
    DriverInfo), as Ray's is."""


@dataclass(frozen=True)
class TaskState(ReadAsDict):
    """One attempt of a task; the detail fields are None unless listed with ``detail=True``."""

    task_id: str
    attempt_number: int
    name: str
    state: str
    job_id: str | None
    actor_id: str | None
    type: str
    func_or_class_name: str
    parent_task_id: str | None
    node_id: str | None
    worker_id: str | None
    worker_pid: int | None
    error_type: str | None
    language: str | None = field(default=None, metadata=_DETAIL)
    required_resources: dict[str, float] | None = field(default=None, metadata=_DETAIL)
    runtime_env_info: dict[str, Any] | None = field(default=None, metadata=_DETAIL)
    placement_group_id: str | None = field(default=None, metadata=_DETAIL)
    events: list[dict[str, Any]] | None = field(default=None, metadata=_DETAIL)
    profiling_data: dict[str, Any] | None = field(default=None, metadata=_DETAIL)
    creation_time_ms: int | None = field(default=None, metadata=_DETAIL)
    start_time_ms: int | None = field(default=None, metadata=_DETAIL)
    end_time_ms: int | None = field(default=None, metadata=_DETAIL)
    task_log_info: dict[str, Any] | None = field(default=None, metadata=_DETAIL)
    error_message: str | None = field(default=None, metadata=_DETAIL)
    is_debugger_paused: bool | None = field(default=None, metadata=_DETAIL)
    call_site: str | None = field(default=None, metadata=_DETAIL)
    label_selector: dict[str, Any] | None = field(default=None, metadata=_DETAIL)


# Each listable resource (its CLI and HTTP name), its record, and its id column (runtime
# envs have none: they are listed, not gotten, as in Ray).
RECORDS: dict[str, type[Any]] = {
    "actors": ActorState,
    "nodes": NodeState,
    "workers": WorkerState,
    "placement_groups": PlacementGroupState,
    "objects": ObjectState,
    "jobs": JobState,
    "runtime_envs": RuntimeEnvState,
    "tasks": TaskState,
}
ID_COLUMNS = {
    "actors": "actor_id",
    "nodes": "node_id",
    "workers": "worker_id",
    "placement_groups": "placement_group_id",
    "objects": "object_id",
    "jobs": "job_id",
    "tasks": "task_id",
}


# A job is gotten by its job id or by its submission id, as in Ray.
OTHER_ID_COLUMNS = {"jobs": "submission_id"}


def id_columns(resource: str) -> list[str]:
    """The columns an id given to ``get`` may match, in the order they are tried."""
    return [c for c in (ID_COLUMNS.get(resource), OTHER_ID_COLUMNS.get(resource)) if c]


def columns(resource: str) -> list[str]:
    return [f.name for f in dataclasses.fields(RECORDS[resource])]


def main_columns(resource: str) -> list[str]:
    """The columns shown without ``detail``."""
    return [f.name for f in dataclasses.fields(RECORDS[resource]) if not f.metadata.get("detail")]


def check_resource(resource: str) -> None:
    if resource not in RECORDS:
        raise ValueError(f"Unknown resource {resource!r}: the state API lists {', '.join(RECORDS)}")


def check_filters(resource: str, filters: Iterable[Any] | None) -> list[Filter]:
    """``filters`` as (column, op, value) triples; ValueError naming what is valid for a
    filter this resource cannot be listed by."""
    if resource == "tasks":
        valid: Iterable[str] = te.FILTER_COLUMNS
    else:
        valid = columns(resource)
    out = []
    for condition in filters or ():
        if not isinstance(condition, (tuple, list)) or len(condition) != 3:
            raise ValueError(
                f"A filter is (column, operator, value), e.g. ('state', '=', 'ALIVE'); got {condition!r}"
            )
        key, op, value = condition
        if key not in valid:
            raise ValueError(
                f"Cannot filter {resource} by {key!r}: the filterable columns are {', '.join(valid)}"
            )
        if op not in FILTER_OPS:
            raise ValueError(f"Unsupported filter predicate {op!r}: use one of {', '.join(FILTER_OPS)}")
        out.append((key, op, value))
    return out


def capped_limit(limit: int) -> tuple[int, str | None]:
    """The limit a listing uses, and a warning when it asked for more than the cap."""
    if limit < 0:
        raise ValueError(f"limit must be at least 0, got {limit}")
    if limit > MAX_LIMIT:
        return MAX_LIMIT, f"limit={limit} is more than a listing returns; at most {MAX_LIMIT} are"
    return limit, None


def matches(have: Any, op: str, value: Any) -> bool:
    # Values arrive as text from the CLI and HTTP: compare as text (booleans in either case).
    if isinstance(have, bool):
        same = str(have).lower() == str(value).lower()
    else:
        same = str(have) == str(value)
    return same if op == "=" else not same


def select(
    rows: Iterable[Mapping[str, Any]], filters: list[Filter], limit: int, offset: int = 0
) -> tuple[list[Mapping[str, Any]], int]:
    """The rows passing every filter, at most ``limit`` after the first ``offset`` of
    them, and how many passed."""
    chosen = [r for r in rows if all(matches(r.get(k), op, v) for k, op, v in filters)]
    return chosen[offset : offset + limit], len(chosen)


def to_records(resource: str, rows: Iterable[Mapping[str, Any]], detail: bool) -> list[Any]:
    """Rows as the resource's dataclass, the detail fields left None without ``detail``."""
    cls = RECORDS[resource]
    keep = set(columns(resource) if detail else main_columns(resource))
    return [cls(**{k: v for k, v in row.items() if k in keep}) for row in rows]


def summarize_actors(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Actors counted by class and state (Ray's ``summarize_actors`` shape)."""
    by_class: dict[str, dict[str, Any]] = {}
    total = 0
    for row in rows:
        total += 1
        entry = by_class.setdefault(row["class_name"], {"class_name": row["class_name"], "state_counts": {}})
        counts = entry["state_counts"]
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    return {"summary": by_class, "total_actors": total, "summary_by": "class"}


def summarize_objects(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """References counted by the call site that made their object (Ray's
    ``summarize_objects`` shape; "disabled" gathers those without one)."""
    groups: dict[str, dict[str, Any]] = {}
    seen: dict[str, set[str]] = {}
    sizes: dict[str, int] = {}
    for row in rows:
        site = row.get("call_site") or "disabled"
        entry = groups.setdefault(
            site,
            {
                "total_objects": 0,
                "total_size_mb": 0.0,
                "total_num_workers": 0,
                "total_num_nodes": 0,
                "task_state_counts": {},
                "ref_type_counts": {},
            },
        )
        _count(entry["task_state_counts"], row["task_status"])
        _count(entry["ref_type_counts"], row["reference_type"])
        ids = seen.setdefault(site, set())
        if row["object_id"] not in ids:
            ids.add(row["object_id"])
            entry["total_objects"] += 1
            entry["total_size_mb"] += max(row["object_size"], 0) / 2**20
            sizes[row["object_id"]] = max(row["object_size"], 0)
        entry.setdefault("_pids", set()).add((row["ip"], row["pid"]))
        entry.setdefault("_ips", set()).add(row["ip"])
    for entry in groups.values():
        entry["total_num_workers"] = len(entry.pop("_pids"))
        entry["total_num_nodes"] = len(entry.pop("_ips"))
    return {
        "summary": groups,
        "total_objects": len(sizes),
        "total_size_mb": sum(sizes.values()) / 2**20,
        "callsite_enabled": any(site != "disabled" for site in groups),
        "summary_by": "callsite",
    }


def _count(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def public_task_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The gcs's task summary without its store's own counters."""
    return {k: v for k, v in summary.items() if k not in ("dropped", "evicted", "malformed")}
