"""Gathering a listing's rows (plain dicts with every field of its record): from the gcs,
and for workers and objects from every node. One coroutine per resource, given how to
call the gcs, so a driver, the CLI and the head's HTTP routes gather alike."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from manta._private.api.job_rows import KV_NAMESPACE, driver_row
from manta._private.api.node_calls import ask_nodes
from manta._private.common.config import Config
from manta._private.common.ids import NodeID
from manta._private.rpc import messages as m
from manta.job_submission.models import JobInfo

CallGcs = Callable[[Any], Awaitable[Any]]


class Gatherer:
    """What gathering needs: the gcs, and the credential and settings to reach nodes
    (``local``: this process's node and its open connection, when it has one)."""

    def __init__(
        self, call_gcs: CallGcs, token: bytes, config: Config, local: tuple[NodeID, Any] | None = None
    ) -> None:
        self.call_gcs = call_gcs
        self._token = token
        self._config = config
        self._local = local

    async def rows(self, resource: str) -> list[dict[str, Any]]:
        gather: Callable[[], Awaitable[list[dict[str, Any]]]] = getattr(self, "_" + resource)
        return await gather()

    async def _ask_nodes(self, msg: Any) -> list[tuple[m.NodeInfo, Any]]:
        nodes = await self.call_gcs(m.GetNodes())
        return await ask_nodes(nodes, msg, self._token, self._config, self._local)

    async def _actors(self) -> list[dict[str, Any]]:
        return [actor_row(info) for info in await self.call_gcs(m.ListActors())]

    async def _nodes(self) -> list[dict[str, Any]]:
        return [node_row(state) for state in await self.call_gcs(m.GetNodes())]

    async def _placement_groups(self) -> list[dict[str, Any]]:
        return [group_row(info) for info in await self.call_gcs(m.ListPlacementGroups())]

    async def _workers(self) -> list[dict[str, Any]]:
        return [
            worker_row(info, row) for info, rows in await self._ask_nodes(m.ListWorkers()) for row in rows
        ]

    async def _objects(self) -> list[dict[str, Any]]:
        return [
            object_row(report.host, process, ref)
            for _info, report in await self._ask_nodes(m.GetMemoryReport())
            for process in report.processes
            for ref in process.references
            if reference_type(ref) is not None
        ]

    async def _runtime_envs(self) -> list[dict[str, Any]]:
        return [
            runtime_env_row(info, row)
            for info, rows in await self._ask_nodes(m.ListRuntimeEnvs())
            for row in rows
        ]

    async def _jobs(self) -> list[dict[str, Any]]:
        submitted: dict[str, dict[str, Any]] = {}
        for key in await self.call_gcs(m.KvKeys(KV_NAMESPACE, b"")):
            raw = await self.call_gcs(m.KvGet(KV_NAMESPACE, key))
            try:
                record = json.loads(raw) if raw is not None else None
                JobInfo.from_json(record)  # type: ignore[arg-type]  # raises for what is not a job's record
            except (TypeError, ValueError, AttributeError):
                record = None  # not a job record: left out rather than failing the listing
            if record is not None:
                submission_id = key.decode(errors="replace")
                submitted[submission_id] = {
                    **record,
                    "type": "SUBMISSION",
                    "submission_id": submission_id,
                    "job_id": None,
                    "driver_info": None,
                }
        drivers = []
        for job in await self.call_gcs(m.GetAllJobs()):
            found = driver_row(job)
            if found is None:
                continue
            submission_id, row = found
            if submission_id in submitted:
                submitted[submission_id].update(job_id=row["job_id"], driver_info=row["driver_info"])
            else:
                drivers.append(row)
        return [*submitted.values(), *drivers]


def actor_row(info: m.ActorInfo) -> dict[str, Any]:
    address = info.address or info.last_address  # a dead actor's: where it ran, as in Ray
    return {
        "actor_id": info.actor_id.hex(),
        "class_name": info.class_name,
        # Ray's name for an actor not yet created (the gcs's PENDING).
        "state": "PENDING_CREATION" if info.state == "PENDING" else info.state,
        "job_id": info.actor_id.job_id().hex(),
        "name": info.name,
        "node_id": address.node_id.hex() if address is not None else None,
        "pid": address.pid if address is not None else None,
        "ray_namespace": info.namespace,
        "death_cause": info.death_cause or None,
        "is_detached": info.detached,
        "repr_name": info.class_name,
        "num_restarts": info.num_restarts,
        "num_restarts_due_to_lineage_reconstruction": 0,
        "num_restarts_due_to_node_preemption": 0,
    }


def node_row(state: m.NodeState) -> dict[str, Any]:
    info = state.info
    return {
        "node_id": info.node_id.hex(),
        "node_ip": info.host,
        "is_head_node": bool(info.is_head),
        "state": "ALIVE" if state.alive else "DEAD",
        "state_message": state.death_reason or None,
        "node_name": info.host,
        "resources_total": dict(state.total or info.resources) if state.alive else {},
        "labels": {"ray.io/node-id": info.node_id.hex(), **info.labels},
    }


def group_row(info: m.PlacementGroupInfo) -> dict[str, Any]:
    return {
        "placement_group_id": info.pg_id.hex(),
        "name": info.name,
        "creator_job_id": None,  # not recorded: a group's id is random, not made from its job's
        "state": info.state,
        "bundles": [
            {
                "bundle_id": {"placement_group_id": info.pg_id.hex(), "bundle_index": i},
                "unit_resources": dict(b),
                "node_id": node or None,
            }
            for i, (b, node) in enumerate(zip(info.bundles, info.nodes, strict=False))
        ],
        "is_detached": info.detached,
        "stats": {"scheduling_state": info.message or info.state, "infeasible": info.infeasible},
    }


def worker_row(node: m.NodeInfo, row: list[Any]) -> dict[str, Any]:
    worker_id, is_driver, alive, pid, exit_type, exit_detail, launch, start, end = row
    return {
        "worker_id": worker_id,
        "is_alive": alive,
        "worker_type": "DRIVER" if is_driver else "WORKER",
        "exit_type": exit_type,
        "node_id": node.node_id.hex(),
        "ip": node.host,
        "pid": pid,
        "exit_detail": exit_detail or None,
        "worker_launch_time_ms": launch or None,
        "worker_launched_time_ms": start or None,
        "start_time_ms": start or None,
        "end_time_ms": end or None,
    }


def reference_type(ref: m.ReferenceInfo) -> str | None:
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


def object_row(host: str, process: m.ProcessReferences, ref: m.ReferenceInfo) -> dict[str, Any]:
    return {
        "object_id": ref.object_id.hex(),
        "object_size": ref.size,
        "task_status": "PENDING" if ref.where == "pending" else "FINISHED",
        "attempt_number": 0,
        "reference_type": reference_type(ref) or "UNKNOWN",
        "call_site": ref.call_site,
        "type": "DRIVER" if process.is_driver else "WORKER",
        "pid": process.pid,
        "ip": host,
    }


def runtime_env_row(node: m.NodeInfo, row: list[Any]) -> dict[str, Any]:
    spec, success, created_ms, error, workers = row
    return {
        "runtime_env": json.loads(spec),
        "success": success,
        "creation_time_ms": created_ms or None,
        "node_id": node.node_id.hex(),
        "ref_cnt": workers,
        "error": error or None,
    }
