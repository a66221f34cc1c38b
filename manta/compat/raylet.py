"""``ray._raylet``: where Ray's compiled core exposes its classes. Here, the names
programs and tests import from it: ``ObjectRef``, the generator classes, the stream's end
error and the typed ids. ``ObjectID`` is Manta's, as ``ray.ObjectID`` is (in Ray both are
``ObjectRef``)."""

from __future__ import annotations

from typing import Any

import manta
from manta._private.common.ids import (
    ActorID,
    JobID,
    NodeID,
    ObjectID,
    PlacementGroupID,
    TaskID,
    WorkerID,
)
from manta._private.core_worker.object_ref import ObjectRef
from manta.exceptions import ObjectRefStreamEndOfStreamError

__all__ = [
    "ActorID",
    "GcsClient",
    "JobID",
    "NodeID",
    "ObjectID",
    "ObjectRef",
    "ObjectRefStreamEndOfStreamError",
    "PlacementGroupID",
    "TaskID",
    "WorkerID",
]

# Names Manta's facade defines once it has streaming generators.
_FROM_MANTA = {
    "ObjectRefGenerator": "ObjectRefGenerator",
    "DynamicObjectRefGenerator": "DynamicObjectRefGenerator",
    "StreamingObjectRefGenerator": "ObjectRefGenerator",  # Ray's older name of the same class
}


class GcsClient:
    """Ray's client of its gcs; here only its address is kept (helpers that take one, such
    as ``publish_error_to_driver``, go through this process's own connection)."""

    def __init__(self, address: str | None = None, **_options: Any) -> None:
        self.address = address


def __getattr__(name: str) -> Any:
    value = getattr(manta, _FROM_MANTA[name], None) if name in _FROM_MANTA else None
    if value is None:
        raise AttributeError(f"Manta does not provide ray._raylet.{name}")
    return value
