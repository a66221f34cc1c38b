"""Manta: Ray's programming model, fast to start, small, debuggable and secure.

``import manta as ray`` runs a Ray Core program unchanged.

This module only re-exports. Layering, top to bottom (nothing imports upward):
    cli, util, dashboard -> manta (this facade) -> _private.api
    -> _private.core_worker, _private.node, _private.gcs (services talk only over RPC)
    -> _private.rpc, _private.serialization -> _private.common, manta.exceptions
"""

from __future__ import annotations

from manta import exceptions
from manta._private.api.cluster_info import available_resources, cluster_resources, nodes
from manta._private.api.context import init, is_initialized, shutdown
from manta._private.api.objects import cancel, get, put, wait
from manta._private.api.remote_function import RemoteFunction, remote
from manta._private.common.ids import (
    ActorID,
    JobID,
    NodeID,
    ObjectID,
    PlacementGroupID,
    TaskID,
    WorkerID,
)
from manta._private.common.version import __version__
from manta._private.core_worker.object_ref import ObjectRef
from manta.runtime_context import get_gpu_ids, get_runtime_context

__all__ = [
    "ActorID",
    "JobID",
    "NodeID",
    "ObjectID",
    "ObjectRef",
    "PlacementGroupID",
    "RemoteFunction",
    "TaskID",
    "WorkerID",
    "__version__",
    "available_resources",
    "cancel",
    "cluster_resources",
    "exceptions",
    "get",
    "get_gpu_ids",
    "get_runtime_context",
    "init",
    "is_initialized",
    "nodes",
    "put",
    "remote",
    "shutdown",
    "wait",
]
