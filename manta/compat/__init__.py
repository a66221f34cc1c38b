"""Ray's import path on Manta: after ``install()``, ``import ray`` and every
``import ray.X.Y`` give Manta's modules, so a program written for Ray runs unchanged.

    import manta.compat
    manta.compat.install()          # before anything imports ray, and before ray.init()
    import ray
    from ray.util.queue import Queue
    assert ray.get is manta.get and Queue is manta.util.queue.Queue

``python -m manta.compat.run_as_ray script.py [args]`` does the same for a whole script.

``ray.X.Y`` is ``manta.X.Y`` (the same module object); Ray's private modules that
programs and tests use have their homes here (``ray._private.worker`` is
``manta.compat.ray_private.worker``, ``ray._common.test_utils`` is
``manta.compat.ray_common.test_utils``, ``ray._raylet`` is ``manta.compat.raylet``); any
other ``ray`` module raises ModuleNotFoundError saying Manta does not provide it, even
where Ray itself is installed. The hook is active only in a process that called
``install()`` and in the workers of the jobs that process starts afterwards.

Layering: this package sits on top, beside the CLI; nothing else in Manta imports it.
"""

from __future__ import annotations

import logging
import sys
import warnings

from manta._private.common import worker_setup
from manta.compat._finder import RayFinder, is_ray_name

__all__ = ["install", "is_installed", "uninstall"]

# What a worker of a job whose driver installed the hook calls at set-up.
_WORKER_SETUP = "manta.compat:install"

_finder: RayFinder | None = None


def install() -> None:
    """Make ``ray`` and ``ray.*`` resolve to Manta in this process, and in the workers of
    jobs this process starts from now on (call it before ``ray.init()``). Calling it
    again does nothing.

    Raises RuntimeError if a real Ray is already imported in this process: its modules
    cannot be swapped for Manta's under the objects that hold them."""
    global _finder
    if _finder is not None:
        return
    _refuse_real_ray()
    _finder = RayFinder()
    sys.meta_path.insert(0, _finder)
    _alias_ray_logger()
    worker_setup.register(_WORKER_SETUP)
    if _driver_connected():
        warnings.warn(
            "manta.compat.install() was called after ray.init(): the workers of the running "
            "job import ray without the hook; call install() before init()",
            RuntimeWarning,
            stacklevel=2,
        )


def _alias_ray_logger() -> None:
    """``logging.getLogger("ray")`` is Manta's logger, so what Ray programs set on Ray's
    logger (level, handlers, propagation) applies to Manta's messages."""
    manager = logging.Logger.manager
    if not isinstance(manager.loggerDict.get("ray"), logging.Logger):
        manager.loggerDict["ray"] = logging.getLogger("manta")


def uninstall() -> None:
    """Undo ``install()``: remove the hook, forget the ``ray`` modules it made, and stop
    asking new jobs' workers to install it."""
    global _finder
    if _finder is None:
        return
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    _finder = None
    worker_setup.unregister(_WORKER_SETUP)
    for name in [n for n in sys.modules if is_ray_name(n)]:
        del sys.modules[name]


def is_installed() -> bool:
    return _finder is not None


def _refuse_real_ray() -> None:
    loaded = sorted(name for name in sys.modules if is_ray_name(name))
    if loaded:
        origin = getattr(sys.modules[loaded[0]], "__file__", None) or "an unknown place"
        raise RuntimeError(
            f"Ray itself is already imported in this process ({loaded[0]} from {origin}); "
            "call manta.compat.install() before anything imports ray"
        )


def _driver_connected() -> bool:
    # Only a process that imported the API can be connected; do not import it here.
    context = sys.modules.get("manta._private.api.context")
    if context is None:
        return False
    worker = context.current_worker()
    return worker is not None and bool(worker.is_driver)
