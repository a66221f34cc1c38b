"""``manta.util.check_serialize``: Ray's module path for ``inspect_serializability``."""

from __future__ import annotations

from manta._private.serializability import FailureTuple, inspect_serializability

__all__ = ["FailureTuple", "inspect_serializability"]
