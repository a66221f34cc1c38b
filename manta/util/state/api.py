"""The state listings behind ``manta.util.state``; see its docstring."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from manta._private.common.ids import ObjectID, TaskID
from manta._private.rpc import messages as m
from manta.util.state import common
from manta.util.state._collect import Gatherer
from manta.util.state._source import gather, http_get, is_http
from manta.util.state.common import (
    DEFAULT_LIMIT,
    ActorState,
    Filter,
    JobState,
    NodeState,
    ObjectState,
    PlacementGroupState,
    RuntimeEnvState,
    TaskState,
    WorkerState,
)

logger = logging.getLogger(__name__)
R = TypeVar("R")


def _listing(resource: str, record: type[R], doc: str) -> Callable[..., list[R]]:
    def listing(
        address: str | None = None,
        filters: list[Filter] | None = None,
        limit: int = DEFAULT_LIMIT,
        timeout: int = 30,
        detail: bool = False,
        raise_on_missing_output: bool = True,
        _explain: bool = False,
    ) -> list[R]:
        return _list(resource, address, filters, limit, timeout, detail)

    listing.__name__ = listing.__qualname__ = f"list_{resource}"
    listing.__doc__ = doc + _LISTING_ARGS
    return listing


_LISTING_ARGS = """

    Args:
        address: The head's dashboard (``http://HOST:PORT``), or a cluster's address on
            this host; default: the connected cluster, else the newest on this host.
        filters: ``(column, "=" or "!=", value)`` triples, all of which a record passes.
        limit: At most this many records (capped at 10,000, with a warning).
        timeout: Seconds to wait for the answer.
        detail: Fill in the detail fields too (None otherwise).

    Raises:
        ValueError: A filter names a column the records do not have, or an operator other
            than ``=`` and ``!=`` (the message lists the valid ones).
    """


@dataclass(frozen=True)
class Fetched:
    """A listing's records, with how many records passed its filters (before its limit)
    and warnings for the caller to show."""

    records: list[Any]
    matched: int
    warnings: list[str]


def _list(
    resource: str, address: str | None, filters: Any, limit: int, timeout: float, detail: bool
) -> list[Any]:
    fetched = fetch(resource, address, filters, limit, timeout, detail)
    for warning in fetched.warnings:
        logger.warning("list_%s: %s", resource, warning)
    return fetched.records


def fetch(
    resource: str, address: str | None, filters: Any, limit: int, timeout: float, detail: bool
) -> Fetched:
    """A listing of ``resource`` (see ``list_actors``), for tools that show more of it."""
    common.check_resource(resource)
    checked = common.check_filters(resource, filters)
    limit, warning = common.capped_limit(limit)
    warnings = [warning] if warning else []
    if is_http(address):
        assert address is not None
        reply = http_get(address, f"/api/v0/{resource}", _query(checked, limit, detail))
        rows, matched = reply["result"], reply["num_filtered"]
        warnings += reply.get("warnings", [])
    elif resource == "tasks":
        wire = [[k, op, str(v)] for k, op, v in checked]
        listing: m.TaskListing = gather(
            address, lambda g: g.call_gcs(m.ListTasks(wire, limit, detail)), timeout
        )
        if listing.dropped:
            warnings.append(
                f"{listing.dropped} task events were dropped before they reached the store, so some tasks "
                "may be missing or out of date (a process recorded more than task_events_max_buffered)"
            )
        rows, matched = listing.records, listing.matched
    else:
        rows, matched = common.select(gather(address, lambda g: g.rows(resource), timeout), checked, limit)
    return Fetched(common.to_records(resource, rows, detail), matched, warnings)


def _query(filters: list[Filter], limit: int, detail: bool) -> list[tuple[str, Any]]:
    query: list[tuple[str, Any]] = [("limit", limit), ("detail", str(detail).lower())]
    for key, op, value in filters:
        query += [("filter_keys", key), ("filter_predicates", op), ("filter_values", value)]
    return query


list_actors = _listing("actors", ActorState, "Every actor the cluster knows, dead ones too.")
list_nodes = _listing("nodes", NodeState, "Every node that joined the cluster, alive or dead.")
list_workers = _listing(
    "workers",
    WorkerState,
    "Every worker and driver process of the live nodes, and the workers that ended lately.",
)
list_placement_groups = _listing(
    "placement_groups", PlacementGroupState, "Every placement group the cluster knows."
)
list_objects = _listing(
    "objects", ObjectState, "Every reference to an object held by a process of the cluster, one record each."
)
list_jobs = _listing("jobs", JobState, "Every job: those submitted to the head, and drivers started by hand.")
list_runtime_envs = _listing(
    "runtime_envs",
    RuntimeEnvState,
    "Every runtime env the live nodes' workers set up, once per env and node.",
)


def _getter(resource: str, record: type[R]) -> Callable[..., R | None]:
    def get(id: str, address: str | None = None, timeout: int = 30, _explain: bool = False) -> R | None:
        for column in common.id_columns(resource):
            found = _list(resource, address, [(column, "=", id)], 1, timeout, True)
            if found:
                return found[0]
        return None

    name = "get_" + resource.rstrip("s") if resource != "placement_groups" else "get_placement_group"
    get.__name__ = get.__qualname__ = name
    get.__doc__ = (
        f"The {resource[:-1].replace('_', ' ')} with this id (every field), or None if there is none."
    )
    return get


get_actor = _getter("actors", ActorState)
get_node = _getter("nodes", NodeState)
get_worker = _getter("workers", WorkerState)
get_placement_group = _getter("placement_groups", PlacementGroupState)
get_job = _getter("jobs", JobState)


def get_objects(
    id: str, address: str | None = None, timeout: int = 30, _explain: bool = False
) -> list[ObjectState]:
    """Every process's reference to the object with this id (an empty list if none)."""
    return _list("objects", address, [("object_id", "=", id)], common.MAX_LIMIT, timeout, True)


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
    return _list("tasks", address, filters, limit, timeout, detail)


list_tasks.__doc__ = (list_tasks.__doc__ or "") + _LISTING_ARGS


def get_task(
    id: str | Any, address: str | None = None, timeout: int = 30, _explain: bool = False
) -> TaskState | list[TaskState] | None:
    """The attempts of one task, by its id, or an ObjectRef it returns (or that ref's hex
    id): None if the store has none, the attempt if there is one, else every attempt."""
    task_id = task_id_of(id).hex()
    found = _list("tasks", address, [("task_id", "=", task_id)], common.MAX_LIMIT, timeout, True)
    if not found:
        return None
    return found[0] if len(found) == 1 else found


def explain(ref_or_task_id: Any, timeout: int = 30, address: str | None = None) -> str:
    """Why a task (or the task making an ObjectRef) has not finished, as a chain of reasons
    with ids: the arguments it waits for and the tasks making them, the resources it needs
    and who holds them, its actor's state, or where it runs and for how long."""
    task_id = task_id_of(ref_or_task_id)
    if is_http(address):
        assert address is not None
        lines: list[str] = http_get(address, f"/api/v0/tasks/{task_id.hex()}/explain", [])
    else:
        lines = gather(address, lambda g: g.call_gcs(m.ExplainTask(task_id)), timeout)
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


def _summary(resource: str, make: Callable[[list[Any]], dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    def summarize(
        address: str | None = None,
        timeout: int = 30,
        raise_on_missing_output: bool = True,
        _explain: bool = False,
    ) -> dict[str, Any]:
        if is_http(address):
            assert address is not None
            found: dict[str, Any] = http_get(address, f"/api/v0/{resource}/summarize", [])
            return found["node_id_to_summary"]  # type: ignore[no-any-return]
        return {"cluster": gather(address, lambda g: _summarized(g, resource, make), timeout)}

    summarize.__name__ = summarize.__qualname__ = f"summarize_{resource}"
    return summarize


async def _summarized(
    gatherer: Gatherer, resource: str, make: Callable[[list[Any]], dict[str, Any]]
) -> dict[str, Any]:
    if resource == "tasks":
        summary: dict[str, Any] = await gatherer.call_gcs(m.SummarizeTasks())
        return common.public_task_summary(summary)
    return make(await gatherer.rows(resource))


summarize_tasks = _summary("tasks", dict)
summarize_tasks.__doc__ = "Task attempts counted by function (or actor method) and state, as Ray's summary."
summarize_actors = _summary("actors", common.summarize_actors)
summarize_actors.__doc__ = "Actors counted by class and state, as Ray's summary."
summarize_objects = _summary("objects", common.summarize_objects)
summarize_objects.__doc__ = (
    "Object references counted by the call site that made their object, as Ray's summary."
)
