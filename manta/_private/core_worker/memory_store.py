"""What this process knows about objects: inline values, store locations, and waiters.

Owned objects land here when their task finishes or at ``put``; borrowed ones when their
owner answers. Readers block on ``wait`` (user thread) or register ``on_ready`` callbacks
(any thread). Thread-safe; holds no I/O.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from manta._private.common.clock import Clock, SystemClock
from manta._private.common.ids import NodeID, ObjectID

logger = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class StoredObject:
    """A ready object: its inline blob, or the node whose store holds it."""

    inline: bytes | None
    node_id: NodeID | None
    size: int
    is_error: bool


class _Waiter:
    __slots__ = ("event", "remaining", "stop_on_error")

    def __init__(self, remaining: int, stop_on_error: bool) -> None:
        self.remaining = remaining
        self.stop_on_error = stop_on_error
        self.event = threading.Event()


class MemoryStore:
    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._objects: dict[ObjectID, StoredObject] = {}
        self._waiters: dict[ObjectID, list[_Waiter]] = {}
        self._callbacks: dict[ObjectID, list[Callable[[StoredObject], None]]] = {}

    def put(self, object_id: ObjectID, obj: StoredObject) -> None:
        with self._lock:
            if object_id in self._objects:
                return  # immutable: whatever arrives second (a late result) is dropped
            self._objects[object_id] = obj
            waiters = self._waiters.pop(object_id, ())
            for waiter in waiters:
                waiter.remaining -= 1
                if waiter.remaining <= 0 or (obj.is_error and waiter.stop_on_error):
                    waiter.event.set()
            callbacks = self._callbacks.pop(object_id, ())
        for callback in callbacks:
            _run_callback(callback, obj)

    def get(self, object_id: ObjectID) -> StoredObject | None:
        return self._objects.get(object_id)

    def contains(self, object_id: ObjectID) -> bool:
        return object_id in self._objects

    def on_ready(self, object_id: ObjectID, callback: Callable[[StoredObject], None]) -> None:
        """Call ``callback(obj)`` once the object is here (now, if it already is)."""
        with self._lock:
            obj = self._objects.get(object_id)
            if obj is None:
                self._callbacks.setdefault(object_id, []).append(callback)
                return
        _run_callback(callback, obj)

    def wait(
        self,
        object_ids: Iterable[ObjectID],
        num_ready: int,
        timeout: float | None,
        stop_on_error: bool = False,
    ) -> set[ObjectID]:
        """Block until ``num_ready`` of the (distinct) ids are here, or (``stop_on_error``)
        one of them is an error, or ``timeout`` passes; returns the ids that are here."""
        ids = list(dict.fromkeys(object_ids))
        with self._lock:
            ready = {i for i in ids if i in self._objects}
            missing = num_ready - len(ready)
            if missing <= 0 or (stop_on_error and any(self._objects[i].is_error for i in ready)):
                return ready
            waiter = _Waiter(missing, stop_on_error)
            for i in ids:
                if i not in ready:
                    self._waiters.setdefault(i, []).append(waiter)
        try:
            deadline = None if timeout is None else self._clock.monotonic() + timeout
            while not waiter.event.is_set():
                left = None if deadline is None else deadline - self._clock.monotonic()
                if left is not None and left <= 0:
                    break
                # Wake at least every second so signals (Ctrl-C, cancellation) get through.
                waiter.event.wait(1.0 if left is None else min(left, 1.0))
        finally:
            with self._lock:
                for i in ids:
                    lst = self._waiters.get(i)
                    if lst is not None and waiter in lst:
                        lst.remove(waiter)
                        if not lst:
                            del self._waiters[i]
        return {i for i in ids if i in self._objects}

    def delete(self, object_ids: Iterable[ObjectID]) -> None:
        with self._lock:
            for i in object_ids:
                self._objects.pop(i, None)

    def forget(self, object_ids: Iterable[ObjectID]) -> None:
        """Delete objects nobody here holds any more, with the callbacks waiting for them
        (a task cancelled while it waited for one, a borrower that gave up on it): the
        object never arrives once freed, and they would wait for ever."""
        with self._lock:
            for i in object_ids:
                self._objects.pop(i, None)
                self._callbacks.pop(i, None)

    def discard_if(self, object_id: ObjectID, stale: StoredObject) -> bool:
        """Forget the object if it is still ``stale`` (not already replaced); True if so."""
        with self._lock:
            if self._objects.get(object_id) is not stale:
                return False
            del self._objects[object_id]
            return True

    def __len__(self) -> int:
        return len(self._objects)


def _run_callback(callback: Callable[[StoredObject], None], obj: StoredObject) -> None:
    # One broken waiter must neither starve the others nor fail whoever stored the value.
    try:
        callback(obj)
    except Exception:
        logger.exception("an object-ready callback failed")
