"""Utilities on top of the core API (Ray's ``ray.util``)."""

from manta._private.api.actor import list_named_actors
from manta._private.api.memory import memory_report, memory_summary
from manta.util.actor_pool import ActorPool

__all__ = ["ActorPool", "list_named_actors", "memory_report", "memory_summary"]
