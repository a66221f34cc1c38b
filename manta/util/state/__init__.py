"""``manta.util.state`` (Ray's ``ray.util.state``): the cluster's state as lists of records.

``list_objects`` (one record per process that holds a reference to an object), ``list_actors``,
``list_nodes`` and ``list_placement_groups`` read what the cluster knows now. Task listings
need the task-event store, which Manta does not have yet: ``list_tasks`` and the other
task-history listings raise ``NotImplementedError`` saying so, rather than return partial
answers.
"""

from __future__ import annotations

from manta.util.state.api import (
    ObjectState,
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
    "list_actors",
    "list_jobs",
    "list_nodes",
    "list_objects",
    "list_placement_groups",
    "list_tasks",
    "list_workers",
    "summarize_tasks",
]
