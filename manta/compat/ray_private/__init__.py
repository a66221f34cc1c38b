"""``ray._private``: homes for the names Ray programs and Ray's tests take from Ray's
private modules. Only these modules exist; any other ``ray._private.X`` raises an
ImportError that says Manta does not provide it.

Submodules load on first attribute access too, as programs reach
``ray._private.worker.global_worker`` after a bare ``import ray``.
"""

from __future__ import annotations

import importlib
from typing import Any

_SUBMODULES = (
    "auto_init_hook",
    "client_mode_hook",
    "gcs_utils",
    "internal_api",
    "object_ref_generator",
    "ray_constants",
    "state",
    "test_utils",
    "utils",
    "worker",
)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"Manta does not provide ray._private.{name}")
