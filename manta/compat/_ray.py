"""What ``import ray`` gives once ``manta.compat.install()`` ran: Manta's public names
(the same objects: ``ray.get is manta.get``), and Ray's private packages on first use
(``ray._private.worker.global_worker`` works after a bare ``import ray``, as in Ray).

A module of its own rather than ``manta`` itself: importing ``ray._private`` binds
``_private`` on the ``ray`` module, which on ``manta`` would hide Manta's own package.
"""

from __future__ import annotations

import importlib
from typing import Any

import manta

# A package, so that the import system looks for ``ray.X`` (the finder answers).
__path__: list[str] = []
__all__ = list(manta.__all__)

# Reached as attributes without an import of their own, as in Ray.
_PRIVATE_PACKAGES = ("_private", "_common", "_raylet")
# Ray's worker modes, which Ray exports at the top level.
_WORKER_NAMES = ("SCRIPT_MODE", "WORKER_MODE", "SPILL_WORKER_MODE", "RESTORE_WORKER_MODE")


def __getattr__(name: str) -> Any:
    if name in _PRIVATE_PACKAGES:
        return importlib.import_module(f"ray.{name}")
    if name in _WORKER_NAMES:
        return getattr(importlib.import_module("ray._private.worker"), name)
    try:
        return getattr(manta, name)
    except AttributeError:
        raise AttributeError(
            f"module 'ray' has no attribute {name!r} (this is Manta's `ray`, through manta.compat)"
        ) from None


def __dir__() -> list[str]:
    return sorted(set(dir(manta)) | set(_PRIVATE_PACKAGES) | set(_WORKER_NAMES) | set(globals()))
