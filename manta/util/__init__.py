"""Utilities on top of the core API (Ray's ``ray.util``)."""

from manta._private.api.actor import list_named_actors

__all__ = ["list_named_actors"]
