"""The submitters' lock. A submitter's state is its I/O thread's, but for one step: a task
sent from the thread that submits it (``push_now``, ``send_now``) when its worker or actor
idles. That step and every entry into the submitter on the I/O thread hold the
submitter's ``_lock`` (reentrant: an entry may lead to another). The step never waits for
it: while the I/O thread holds it, that thread is awake and takes the task as cheaply."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from manta._private.rpc.transport import Connection

_F = TypeVar("_F", bound=Callable[..., Any])


def entry(method: _F) -> _F:
    """An entry into a submitter (whose ``_lock`` it holds while it runs)."""

    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return locked  # type: ignore[return-value]


def takes_thread_writes(conn: Connection) -> bool:
    """Whether a task may be sent over ``conn`` from the submitting thread."""
    return conn.takes_thread_writes
