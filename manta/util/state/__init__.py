"""``manta.util.state`` (Ray's ``ray.util.state``): the cluster's state as lists of records.

``list_*`` return records (dataclasses that read as dicts too, Ray's fields) of actors,
nodes, workers, jobs, placement groups, runtime envs, objects (one per process holding a
reference) and tasks; ``get_*`` one by id; ``summarize_*`` counts. Tasks come from the gcs's
task-event store, which every process reports its tasks' state changes to; the rest is
what the cluster knows now. ``explain`` says why a task has not finished. Each takes
``address``: the head's dashboard (``http://HOST:PORT``, the way in from off the
cluster), a cluster's address on this host, or by default the connected cluster.
"""

from __future__ import annotations

from manta.util.state.api import (
    explain,
    get_actor,
    get_job,
    get_node,
    get_objects,
    get_placement_group,
    get_task,
    get_worker,
    list_actors,
    list_jobs,
    list_nodes,
    list_objects,
    list_placement_groups,
    list_runtime_envs,
    list_tasks,
    list_workers,
    summarize_actors,
    summarize_objects,
    summarize_tasks,
)
from manta.util.state.common import (
    ActorState,
    JobState,
    NodeState,
    ObjectState,
    PlacementGroupState,
    RuntimeEnvState,
    TaskState,
    WorkerState,
)

__all__ = [
    "ActorState",
    "JobState",
    "NodeState",
    "ObjectState",
    "PlacementGroupState",
    "RuntimeEnvState",
    "TaskState",
    "WorkerState",
    "explain",
    "get_actor",
    "get_job",
    "get_node",
    "get_objects",
    "get_placement_group",
    "get_task",
    "get_worker",
    "list_actors",
    "list_jobs",
    "list_nodes",
    "list_objects",
    "list_placement_groups",
    "list_runtime_envs",
    "list_tasks",
    "list_workers",
    "summarize_actors",
    "summarize_objects",
    "summarize_tasks",
]
