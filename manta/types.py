"""``manta.types`` (Ray's ``ray.types``): the names used in type annotations."""

from __future__ import annotations

from manta._private.core_worker.object_ref import ObjectRef
from manta._private.core_worker.object_ref_generator import ObjectRefGenerator

__all__ = ["ObjectRef", "ObjectRefGenerator"]
