"""Manta: Ray's programming model, fast to start, small, debuggable and secure.

``import manta as ray`` runs a Ray Core program unchanged.

This module only re-exports, lazily: ``import manta`` costs next to nothing, and the
daemons (which import ``manta._private...``) never load the driver API. Layering, top to
bottom (nothing imports upward):
    cli, util, dashboard -> manta (this facade) -> _private.api
    -> _private.core_worker, _private.node, _private.gcs (services talk only over RPC)
    -> _private.rpc, _private.serialization -> _private.common, manta.exceptions
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from manta._private.common.version import __version__

if TYPE_CHECKING:
    from manta import actor, cloudpickle, exceptions, job_config, runtime_context, util
    from manta._private.api.actor import get_actor, kill, method
    from manta._private.api.cluster_info import available_resources, cluster_resources, nodes
    from manta._private.api.context import init, is_initialized, shutdown
    from manta._private.api.objects import cancel, get, put, wait
    from manta._private.api.remote_function import RemoteFunction, remote
    from manta._private.api.timeline import timeline
    from manta._private.common.ids import (
        ActorID,
        JobID,
        NodeID,
        ObjectID,
        PlacementGroupID,
        TaskID,
        WorkerID,
    )
    from manta._private.common.logging_config import LoggingConfig
    from manta._private.core_worker.object_ref import ObjectRef
    from manta._private.core_worker.object_ref_generator import ObjectRefGenerator
    from manta._private.core_worker.streams import DynamicObjectRefGenerator
    from manta.runtime_context import get_gpu_ids, get_runtime_context

# Public name -> the module that defines it.
_EXPORTS = {
    "available_resources": "manta._private.api.cluster_info",
    "cluster_resources": "manta._private.api.cluster_info",
    "nodes": "manta._private.api.cluster_info",
    "init": "manta._private.api.context",
    "is_initialized": "manta._private.api.context",
    "shutdown": "manta._private.api.context",
    "cancel": "manta._private.api.objects",
    "get": "manta._private.api.objects",
    "put": "manta._private.api.objects",
    "wait": "manta._private.api.objects",
    "RemoteFunction": "manta._private.api.remote_function",
    "get_actor": "manta._private.api.actor",
    "kill": "manta._private.api.actor",
    "method": "manta._private.api.actor",
    "remote": "manta._private.api.remote_function",
    "timeline": "manta._private.api.timeline",
    "ActorID": "manta._private.common.ids",
    "JobID": "manta._private.common.ids",
    "NodeID": "manta._private.common.ids",
    "ObjectID": "manta._private.common.ids",
    "PlacementGroupID": "manta._private.common.ids",
    "TaskID": "manta._private.common.ids",
    "WorkerID": "manta._private.common.ids",
    "LoggingConfig": "manta._private.common.logging_config",
    "ObjectRef": "manta._private.core_worker.object_ref",
    "ObjectRefGenerator": "manta._private.core_worker.object_ref_generator",
    "DynamicObjectRefGenerator": "manta._private.core_worker.streams",
    "get_gpu_ids": "manta.runtime_context",
    "get_runtime_context": "manta.runtime_context",
}
_SUBMODULES = ("actor", "cloudpickle", "exceptions", "job_config", "runtime_context", "util")

__all__ = [
    "ActorID",
    "DynamicObjectRefGenerator",
    "JobID",
    "LoggingConfig",
    "NodeID",
    "ObjectID",
    "ObjectRef",
    "ObjectRefGenerator",
    "PlacementGroupID",
    "RemoteFunction",
    "TaskID",
    "WorkerID",
    "__version__",
    "actor",
    "available_resources",
    "cancel",
    "cloudpickle",
    "cluster_resources",
    "exceptions",
    "get",
    "get_actor",
    "get_gpu_ids",
    "get_runtime_context",
    "init",
    "is_initialized",
    "job_config",
    "kill",
    "method",
    "nodes",
    "put",
    "remote",
    "runtime_context",
    "shutdown",
    "timeline",
    "util",
    "wait",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"manta.{name}")
    else:
        raise AttributeError(f"module 'manta' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
