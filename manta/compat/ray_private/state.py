"""``ray._private.state``: Ray's older state accessors, as records from the gcs."""

from __future__ import annotations

from typing import Any

from manta.util.state import list_actors


def actors(actor_id: str | None = None) -> dict[str, Any]:
    """Every actor (or one, by hex id) as Ray's actor table rows, keyed by hex id."""
    rows = {}
    for record in list_actors(limit=10_000, detail=True):
        rows[record["actor_id"]] = {
            "ActorID": record["actor_id"],
            "ActorClassName": record["class_name"],
            "State": record["state"],
            "Name": record["name"],
            "Namespace": record["ray_namespace"],
            "JobID": record["job_id"],
            "NumRestarts": record["num_restarts"],
            "Pid": record["pid"],
            "IsDetached": record["is_detached"],
        }
    if actor_id is not None:
        return rows.get(actor_id, {})
    return rows
