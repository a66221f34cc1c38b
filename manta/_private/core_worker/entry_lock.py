"""The submitters' lock. A submitter's state is its I/O thread's, but for one step: a task
sent from the thread that submits it (``push_now``, ``send_now``) when its worker or actor
idles. That step and every entry into the submitter on the I/O thread hold the
submitter's ``_lock`` (reentrant: an entry may lead to another). The step never waits for
it: while the I/O thread holds it, that thread is awake and takes the task as cheaply."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from manta._private.common import task_events as te
from manta._private.core_worker.task_events import TaskEventBuffer
from manta._private.core_worker.task_manager import PendingTask
from manta._private.rpc.transport import Connection

_F = TypeVar("_F", bound=Callable[..., Any])


class _Sends(Protocol):
    @property
    def task(self) -> PendingTask: ...


_A = TypeVar("_A", bound=_Sends)


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


def send_from_caller(
    lock: threading.RLock,
    events: TaskEventBuffer,
    decide: Callable[[], _A | None],
    send: Callable[[_A], None],
) -> bool:
    """The step from the caller's thread: if the lock is free, ``decide`` (a policy's
    send-now decision) and ``send`` what it decided. False if nothing was done."""
    if not lock.acquire(blocking=False):
        return False  # the I/O thread is in the submitter: awake, it takes the task as cheaply
    try:
        action = decide()
        if action is None:
            return False
        if action.task.spec.task_events:
            events.transition(action.task.spec, te.SUBMITTED_TO_WORKER)
        send(action)
        return True
    finally:
        lock.release()
