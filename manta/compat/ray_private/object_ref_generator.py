"""``ray._private.object_ref_generator``: where Ray defines its generator classes; here
Manta's, once the facade exports them."""

from __future__ import annotations

from typing import Any

import manta

_NAMES = ("ObjectRefGenerator", "DynamicObjectRefGenerator")


def __getattr__(name: str) -> Any:
    value = getattr(manta, name, None) if name in _NAMES else None
    if value is None:
        raise AttributeError(f"Manta does not provide ray._private.object_ref_generator.{name}")
    return value
