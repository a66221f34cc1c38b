"""``ray._common``: homes for the names Ray's tests take from Ray's ``ray._common``
(``test_utils``: ``wait_for_condition``, ``SignalActor``, ...; ``utils``)."""

from __future__ import annotations

import importlib
from typing import Any

_SUBMODULES = ("test_utils", "utils")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"Manta does not provide ray._common.{name}")
