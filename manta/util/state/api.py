"""The state listings behind ``manta.util.state``; see its docstring."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from manta._private.api.cluster_info import nodes as cluster_nodes
from manta._private.api.context import require_initialized
from manta._private.api.memory import gather_reports
from manta._private.api.placement_group import placement_group_table
from manta._private.common import task_events as te
from manta._private.common.ids import ObjectID, TaskID
from manta._private.rpc import messages as m

logger = logging.getLogger(__name__)

# Ray's default: at most this many records unless ``limit`` says otherwise.
DEFAULT_LIMIT = 100
Filter = tuple[str, str, Any]


class Record(dict):  # type: ignore[type-arg]
    """A state record read as a dict or by attribute (``actor.state``), as Ray's are."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class _ReadAsDict:
    """Records read as dicts too (``record["state"]``), as Ray's can."""

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


@dataclass(frozen=True)
class ObjectState(_ReadAsDict):
    """One process's reference to an object (Ray's ``ObjectState``)."""

    object_id: str
    object_size: int
    task_status: str  # "FINISHED" once the value exists, else "PENDING"
    attempt_number: int
    reference_type: str  # LOCAL_REFERENCE, USED_BY_PENDING_TASK, CAPTURED_IN_OBJECT, ...
    call_site: str
    type: str  # "DRIVER" or "WORKER"
    pid: int
    ip: str


def list_objects(
    address: str | None = None,
    filters: list[Filter] | None = None,
    limit: int = DEFAULT_LIMIT,
    timeout: int = 30,
    detail: bool = False,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> list[ObjectState]:
    """Every reference to an object held by a process of the cluster, one record each."""
    worker = require_initialized("listing objects")
    states = worker.call_gcs(m.GetNodes())

    async def run() -> list[m.MemoryReport]:
        return await gather_reports(
            states, worker.session.token, worker.config, local=(worker.node_id, worker.node_conn)
        )

    reports: list[m.MemoryReport] = worker.io.run(run(), timeout)
    records = [
        _object_state(report.host, process, ref)
        for report in reports
        for process in report.processes
        for ref in process.references
        if _reference_type(ref) is not None
    ]
    return _select(records, filters, limit)


def _reference_type(ref: m.ReferenceInfo) -> str | None:
    if ref.local_refs:
        return "LOCAL_REFERENCE"
    if ref.submitted:
        return "USED_BY_PENDING_TASK"
    if ref.contained:
        return "CAPTURED_IN_OBJECT"
    if ref.pinned:
        return "PINNED_IN_MEMORY"
    if ref.borrowers:
        return "BORROWED"
    return None  # known, but held by nothing here


def _object_state(host: str, process: m.ProcessReferences, ref: m.ReferenceInfo) -> ObjectState:
    return ObjectState(
        object_id=ref.object_id.hex(),
        object_size=ref.size,
        task_status="PENDING" if ref.where == "pending" else "FINISHED",
        attempt_number=0,
        reference_type=_reference_type(ref) or "UNKNOWN",
        call_site=ref.call_site,
        type="DRIVER" if process.is_driver else "WORKER",
        pid=process.pid,
        ip=host,
    )


def list_nodes(
    address: str | None = None,
    filters: list[Filter] | None = None,
    limit: int = DEFAULT_LIMIT,
    timeout: int = 30,
    detail: bool = False,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> list[Record]:
    """Every node that joined the cluster, alive or dead."""
    records = [
        Record(
            {
                "node_id": n["NodeID"],
                "node_ip": n["NodeManagerAddress"],
                "is_head_node": bool(n["IsHead"]),
                "state": "ALIVE" if n["Alive"] else "DEAD",
                "node_name": n.get("NodeName", n["NodeManagerAddress"]),
                "resources_total": dict(n["Resources"]),
                "labels": dict(n.get("Labels", {})),
            }
        )
        for n in cluster_nodes()
    ]
    return _select(records, filters, limit)


def list_placement_groups(
    address: str | None = None,
    filters: list[Filter] | None = None,
    limit: int = DEFAULT_LIMIT,
    timeout: int = 30,
    detail: bool = False,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> list[Record]:
    """Every placement group the cluster knows."""
    records = [
        Record(
            {
                "placement_group_id": group_id,
                "name": row.get("name", ""),
                "state": row.get("state", ""),
                "strategy": row.get("strategy", ""),
                "bundles": row.get("bundles", {}),
            }
        )
        for group_id, row in placement_group_table().items()
    ]
    return _select(records, filters, limit)


def list_actors(
    address: str | None = None,
    filters: list[Filter] | None = None,
    limit: int = DEFAULT_LIMIT,
    timeout: int = 30,
    detail: bool = False,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> list[Record]:
    """Every actor the cluster knows, dead ones too (Ray's actor records)."""
    worker = require_initialized("listing actors")
    records = [_actor_record(info) for info in worker.call_gcs(m.ListActors(), timeout)]
    return _select(records, filters, limit)


def _actor_record(info: m.ActorInfo) -> Record:
    address = info.address
    return Record(
        {
            "actor_id": info.actor_id.hex(),
            "class_name": info.class_name,
            "state": info.state,
            "name": info.name,
            "namespace": info.namespace,
            "job_id": info.actor_id.job_id().hex(),
            "pid": address.pid if address is not None else None,
            "node_id": address.node_id.hex() if address is not None else None,
            "num_restarts": info.num_restarts,
            "death_cause": info.death_cause or None,
            "is_detached": info.detached,
        }
    )


@dataclass(frozen=True)
class TaskState(_ReadAsDict):
    """One attempt of a task (Ray's ``TaskState``); the detail fields are None unless
    listed with ``detail=True``."""

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
    language: str | None = None
    required_resources: dict[str, float] | None = None
    runtime_env_info: dict[str, Any] | None = None
    placement_group_id: str | None = None
    events: list[dict[str, Any]] | None = None
    profiling_data: dict[str, Any] | None = None
    creation_time_ms: int | None = None
    start_time_ms: int | None = None
    end_time_ms: int | None = None
    task_log_info: dict[str, Any] | None = None
    error_message: str | None = None
    is_debugger_paused: bool | None = None
    call_site: str | None = None
    label_selector: dict[str, Any] | None = None


def list_tasks(
    address: str | None = None,
    filters: list[Filter] | None = None,
    limit: int = DEFAULT_LIMIT,
    timeout: int = 30,
    detail: bool = False,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> list[TaskState]:
    """Task attempts the cluster recorded (oldest first): running, waiting, and finished
    ones, until the gcs's store evicts them (``task_events_max_num_task_in_gcs``)."""
    worker = require_initialized("listing tasks")
    wire_filters = []
    for key, op, value in filters or ():
        te.check_filter(key, op)
        wire_filters.append([key, op, str(value)])
    if limit > te.MAX_LIMIT:
        logger.warning(
            "list_tasks: limit=%d is more than the most a listing returns; using %d", limit, te.MAX_LIMIT
        )
        limit = te.MAX_LIMIT
    listing: m.TaskListing = worker.call_gcs(m.ListTasks(wire_filters, max(limit, 0), detail), timeout)
    if listing.dropped and raise_on_missing_output:
        logger.warning(
            "list_tasks: %d task events were dropped before they reached the store, so some tasks "
            "may be missing or out of date (a process recorded more than task_events_max_buffered)",
            listing.dropped,
        )
    return [TaskState(**record) for record in listing.records]


def get_task(
    id: str | Any, address: str | None = None, timeout: int = 30, _explain: bool = False
) -> TaskState | list[TaskState] | None:
    """The attempts of one task, by its id, or an ObjectRef it returns (or that ref's hex
    id): None if the store has none, the attempt if there is one, else every attempt."""
    task_id = task_id_of(id).hex()
    found = list_tasks(filters=[("task_id", "=", task_id)], limit=te.MAX_LIMIT, timeout=timeout, detail=True)
    if not found:
        return None
    return found[0] if len(found) == 1 else found


def explain(ref_or_task_id: Any, timeout: int = 30) -> str:
    """Why a task (or the task making an ObjectRef) has not finished, as a chain of reasons
    with ids: the arguments it waits for and the tasks making them, the resources it needs
    and who holds them, its actor's state, or where it runs and for how long."""
    worker = require_initialized("explaining a task")
    lines: list[str] = worker.call_gcs(m.ExplainTask(task_id_of(ref_or_task_id)), timeout)
    return "\n".join(lines)


def task_id_of(ref_or_id: Any) -> bytes:
    """The task id an ObjectRef, a TaskID, or a task or object id in hex names."""
    if hasattr(ref_or_id, "task_id"):
        return bytes(ref_or_id.task_id())
    if isinstance(ref_or_id, TaskID):
        return bytes(ref_or_id)
    text = str(ref_or_id)
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) == ObjectID.SIZE:
        return bytes(ObjectID(raw).task_id())
    if len(raw) != TaskID.SIZE:
        raise ValueError(
            f"{text[:80]!r} is neither a task id ({2 * TaskID.SIZE} hex digits) nor an object id "
            f"({2 * ObjectID.SIZE}); pass an ObjectRef, or an id from list_tasks()"
        )
    return raw


def summarize_tasks(
    address: str | None = None,
    timeout: int = 30,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> dict[str, Any]:
    """Task attempts counted by function (or actor method) and state, as Ray's summary."""
    worker = require_initialized("summarizing tasks")
    summary: dict[str, Any] = worker.call_gcs(m.SummarizeTasks(), timeout)
    for key in ("dropped", "evicted", "malformed"):
        summary.pop(key, None)
    return {"cluster": summary}


def _not_yet(what: str) -> Callable[..., Any]:
    def listing(*_args: Any, **_kwargs: Any) -> Any:
        raise NotImplementedError(
            f"manta.util.state.{what} is not available yet. list_tasks, list_actors, list_nodes, "
            "list_objects and list_placement_groups are; `manta job list` lists jobs."
        )

    listing.__name__ = what
    return listing


list_workers = _not_yet("list_workers")
list_jobs = _not_yet("list_jobs")


def _select(records: Iterable[Any], filters: list[Filter] | None, limit: int) -> list[Any]:
    chosen = [r for r in records if all(_matches(r, f) for f in filters or ())]
    return chosen[:limit]


def _matches(record: Any, condition: Filter) -> bool:
    key, op, value = condition
    have = asdict(record).get(key) if isinstance(record, ObjectState) else record.get(key)
    if op == "=":
        return str(have) == str(value)
    if op == "!=":
        return str(have) != str(value)
    raise ValueError(f"unsupported filter predicate {op!r}: use '=' or '!='")
