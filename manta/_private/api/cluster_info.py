"""``nodes``, ``cluster_resources``, ``available_resources``: the gcs's view of the cluster."""

from __future__ import annotations

from typing import Any

from manta._private.api.context import require_initialized
from manta._private.rpc import messages as m


def _node_states() -> list[m.NodeState]:
    worker = require_initialized("using the state API")
    return list(worker.call_gcs(m.GetNodes()))


def nodes() -> list[dict[str, Any]]:
    """One dict per node that ever joined, alive or dead, in Ray's format."""
    result = []
    for state in _node_states():
        info = state.info
        result.append(
            {
                "NodeID": info.node_id.hex(),
                "Alive": state.alive,
                "alive": state.alive,
                "NodeManagerAddress": info.host,
                "NodeManagerHostname": info.hostname,
                "NodeManagerPort": info.port,
                "NodeName": info.host,
                "RayletSocketName": info.unix,
                "ObjectStoreSocketName": info.arena_path,
                "SessionDir": info.session_dir,
                "IsHead": info.is_head,
                "DeathReason": 0 if state.alive else 1,
                "DeathReasonMessage": state.death_reason,
                "Resources": dict(state.total or info.resources) if state.alive else {},
                "Labels": {"ray.io/node-id": info.node_id.hex(), **info.labels},
            }
        )
    return result


def cluster_resources() -> dict[str, float]:
    """Total resources of the live nodes."""
    total: dict[str, float] = {}
    for state in _node_states():
        if state.alive:
            for name, amount in (state.total or state.info.resources).items():
                total[name] = total.get(name, 0.0) + amount
    return total


def available_resources() -> dict[str, float]:
    """Resources free right now on the live nodes; exhausted ones are left out, as in Ray."""
    free: dict[str, float] = {}
    for state in _node_states():
        if state.alive:
            for name, amount in state.available.items():
                free[name] = free.get(name, 0.0) + amount
    return {name: amount for name, amount in free.items() if amount > 0}
