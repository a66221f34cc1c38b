"""``manta.util.state`` (Ray's ``ray.util.state``): the cluster's state as lists of records.

``list_objects`` (one record per process that holds a reference to an object), ``list_actors``,
``list_nodes`` and ``list_placement_groups`` read what the cluster knows now; ``list_tasks``,
``get_task`` and ``summarize_tasks`` read the gcs's task-event store, which every process
reports its tasks' state changes to; ``explain`` says why a task has not finished. ``list_workers`` and ``list_jobs`` raise
``NotImplementedError`` saying so, rather than return partial answers.
"""

from __future__ import annotations

from manta.util.state.api import (
    ObjectState,
    TaskState,
    explain,
    get_task,
    list_actors,
    list_jobs,
    list_nodes,
    list_objects,
    list_placement_groups,
    list_tasks,
    list_workers,
    summarize_tasks,
)

__all__ = [
    "ObjectState",
    "TaskState",
    "explain",
    "get_task",
    "list_actors",
    "list_jobs",
    "list_nodes",
    "list_objects",
    "list_placement_groups",
    "list_tasks",
    "list_workers",
    "summarize_tasks",
]
