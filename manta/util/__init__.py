"""Utilities on top of the core API (Ray's ``ray.util``)."""

from manta._private.api.actor import list_named_actors
from manta._private.api.memory import memory_report, memory_summary
from manta.util.actor_pool import ActorPool
from manta.util.placement_group import (
    PlacementGroup,
    get_current_placement_group,
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)

__all__ = [
    "ActorPool",
    "PlacementGroup",
    "get_current_placement_group",
    "get_placement_group",
    "list_named_actors",
    "memory_report",
    "memory_summary",
    "placement_group",
    "placement_group_table",
    "remove_placement_group",
]
