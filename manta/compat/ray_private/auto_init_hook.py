"""``ray._private.auto_init_hook``: start (or join) a cluster on first use, as Ray's API
calls do when ``init`` was not called."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import manta

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["auto_init_ray", "wrap_auto_init"]

_lock = threading.Lock()


def auto_init_ray() -> None:
    """``manta.init()`` unless this process is connected already."""
    if not manta.is_initialized():
        with _lock:
            if not manta.is_initialized():
                manta.init()


def wrap_auto_init(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        auto_init_ray()
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
