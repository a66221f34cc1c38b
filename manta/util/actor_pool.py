"""``ActorPool``: spread work over a fixed set of actors (Ray's ``ray.util.ActorPool``).

``fn(actor, value)`` must call one actor method and return its ObjectRef. Each actor runs
one submitted value at a time; values wait when every actor is busy.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import manta
from manta._private.core_worker.object_ref import ObjectRef
from manta.exceptions import GetTimeoutError


class ActorPool:
    def __init__(self, actors: list[Any]) -> None:
        self._idle: list[Any] = list(actors)
        # ref -> (submission index, actor) for work in progress.
        self._running: dict[ObjectRef, tuple[int, Any]] = {}
        self._index_to_ref: dict[int, ObjectRef] = {}
        self._waiting: deque[tuple[Callable[[Any, Any], ObjectRef], Any]] = deque()
        self._next_submit = 0
        self._next_return = 0

    def submit(self, fn: Callable[[Any, Any], ObjectRef], value: Any) -> None:
        """Run ``fn(actor, value)`` on an idle actor, or once one becomes idle."""
        if self._idle:
            actor = self._idle.pop()
            ref = fn(actor, value)
            if not isinstance(ref, ObjectRef):
                raise TypeError(
                    f"the function given to ActorPool must return an ObjectRef, got {type(ref).__name__}"
                )
            self._running[ref] = (self._next_submit, actor)
            self._index_to_ref[self._next_submit] = ref
            self._next_submit += 1
        else:
            self._waiting.append((fn, value))

    def has_next(self) -> bool:
        return bool(self._running) or bool(self._waiting)

    def has_free(self) -> bool:
        return bool(self._idle) and not self._waiting

    def get_next(self, timeout: float | None = None, ignore_if_timedout: bool = False) -> Any:
        """The next result in submission order."""
        if not self.has_next():
            raise StopIteration("No more results to get")
        if self._next_return >= self._next_submit:
            raise ValueError("It is not allowed to call get_next() after get_next_unordered().")
        ref = self._index_to_ref[self._next_return]
        ready, _ = manta.wait([ref], timeout=timeout)
        if not ready:
            if ignore_if_timedout:
                self._forget(ref)
                self._next_return += 1
                return None
            raise GetTimeoutError("Timed out waiting for result")
        self._forget(ref)
        self._next_return += 1
        return manta.get(ref)

    def get_next_unordered(self, timeout: float | None = None, ignore_if_timedout: bool = False) -> Any:
        """Whichever result is ready first."""
        if not self.has_next():
            raise StopIteration("No more results to get")
        ready, _ = manta.wait(list(self._running), num_returns=1, timeout=timeout)
        if not ready:
            if ignore_if_timedout:
                return None
            raise GetTimeoutError("Timed out waiting for result")
        ref = ready[0]
        self._forget(ref)
        self._next_return = self._next_submit  # ordered get_next no longer makes sense
        return manta.get(ref)

    def _forget(self, ref: ObjectRef) -> None:
        index, actor = self._running.pop(ref)
        self._index_to_ref.pop(index, None)
        self._return_actor(actor)

    def _return_actor(self, actor: Any) -> None:
        self._idle.append(actor)
        if self._waiting:
            fn, value = self._waiting.popleft()
            self.submit(fn, value)

    def map(self, fn: Callable[[Any, Any], ObjectRef], values: Iterable[Any]) -> Iterator[Any]:
        """Results of ``fn`` over ``values``, in order."""
        while self.has_next():  # finish what an earlier call left
            self.get_next_unordered()
        for value in values:
            self.submit(fn, value)
        while self.has_next():
            yield self.get_next()

    def map_unordered(self, fn: Callable[[Any, Any], ObjectRef], values: Iterable[Any]) -> Iterator[Any]:
        """Results of ``fn`` over ``values``, as they finish."""
        while self.has_next():
            self.get_next_unordered()
        for value in values:
            self.submit(fn, value)
        while self.has_next():
            yield self.get_next_unordered()

    def pop_idle(self) -> Any | None:
        """Take an idle actor out of the pool (None if all are busy)."""
        return self._idle.pop() if self.has_free() else None

    def push(self, actor: Any) -> None:
        """Add an actor to the pool."""
        if actor in self._idle or any(a == actor for _, a in self._running.values()):
            raise ValueError("Actor already belongs to current ActorPool")
        self._return_actor(actor)
