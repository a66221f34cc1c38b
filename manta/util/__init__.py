"""Utilities on top of the core API (Ray's ``ray.util``).

``manta.util.multiprocessing`` (the ``multiprocessing.Pool`` API on the cluster) and
``manta.util.joblib`` (the joblib backend) load on first use, so ``import manta.util``
stays cheap and never needs joblib.
"""

from __future__ import annotations

import importlib
from typing import Any

from manta._private.api.actor import list_named_actors
from manta._private.api.memory import memory_report, memory_summary
from manta.util.actor_pool import ActorPool
from manta.util.check_serialize import inspect_serializability
from manta.util.node_ip import get_node_ip_address
from manta.util.placement_group import (
    PlacementGroup,
    get_current_placement_group,
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)
from manta.util.serialization import deregister_serializer, register_serializer

# Submodules reachable as attributes (``manta.util.multiprocessing.Pool``) without an
# import of their own, as in Ray. Not in __all__: a star import must not shadow the
# standard library's multiprocessing or the joblib package.
_LAZY_SUBMODULES = ("joblib", "metrics", "multiprocessing", "state")

__all__ = [
    "ActorPool",
    "PlacementGroup",
    "deregister_serializer",
    "get_current_placement_group",
    "get_node_ip_address",
    "get_placement_group",
    "inspect_serializability",
    "list_named_actors",
    "memory_report",
    "memory_summary",
    "placement_group",
    "placement_group_table",
    "register_serializer",
    "remove_placement_group",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"manta.util.{name}")
    raise AttributeError(f"module 'manta.util' has no attribute {name!r}")
