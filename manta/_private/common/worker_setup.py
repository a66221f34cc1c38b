"""Functions a driver asks every worker of its job to call before the job's first task.

A driver registers ``"module:function"`` names here before ``init()``; the core worker
records them in the job's config when it registers the job, and a worker calls each one
when it sets up for that job (after the job's ``sys.path`` is in place, before any of
the job's functions or arguments are unpickled). Names rather than pickled callables:
the worker imports what it calls, so nothing here depends on the driver's pickles.

This is how ``manta.compat.install()`` puts its ``ray`` import hook into workers without
the core knowing anything about the compat layer.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterable

logger = logging.getLogger("manta")

_registered: list[str] = []


def register(name: str) -> None:
    """Have the workers of jobs this process starts from now on call ``name``
    (``"package.module:function"``, no arguments)."""
    module, _, function = name.partition(":")
    if not module or not function:
        raise ValueError(f"a worker setup function is named 'module:function', got {name!r}")
    if name not in _registered:
        _registered.append(name)


def unregister(name: str) -> None:
    if name in _registered:
        _registered.remove(name)


def registered() -> list[str]:
    return list(_registered)


def run(names: Iterable[str]) -> None:
    """Call each named function. A failure is reported on the worker's stderr (which
    reaches the driver) and in its log, and does not stop the others: the job's tasks
    then fail on whatever the missing setup would have provided."""
    for name in names:
        module, _, function = name.partition(":")
        try:
            getattr(importlib.import_module(module), function)()
        except Exception as e:
            logger.exception("worker setup function %s failed", name)
            print(f"manta: worker setup function {name} failed: {e!r}", file=sys.stderr)
