"""``ObjectRefGenerator``: what calling a generator task returns.

Iterating it (``for ref in gen``, ``next(gen)``, ``async for``, ``await gen.__anext__()``)
hands out the ref of each item the task yields, as soon as the item exists, while the task
goes on producing. If the task fails, the ref after its last item holds the error (it is
``gen.completed()``), and iteration stops after it. Only the process that called the task
can read its stream: a generator cannot be passed to another task.
"""

from __future__ import annotations

import asyncio
import types
from typing import TYPE_CHECKING, Any, Protocol

from manta._private.common.aio import resolve
from manta._private.core_worker.object_ref import ObjectRef
from manta.exceptions import RaySystemError

if TYPE_CHECKING:  # at run time this module needs only ObjectRef
    from manta._private.core_worker.memory_store import MemoryStore
    from manta._private.core_worker.object_manager import ObjectManager
    from manta._private.core_worker.streams import StreamTable


class StreamReader(Protocol):
    """What a generator reads its task's items through: the core worker that called it."""

    @property
    def memory_store(self) -> MemoryStore: ...

    @property
    def streams(self) -> StreamTable: ...

    @property
    def objects(self) -> ObjectManager: ...

    @property
    def closed(self) -> bool:
        """Whether the session that ran the task has been shut down."""
        ...


class ObjectRefGenerator:
    """The refs of a generator task's items, in order, as they are produced."""

    __class_getitem__: Any = classmethod(types.GenericAlias)

    def __init__(self, generator_ref: ObjectRef, worker: StreamReader) -> None:
        self._generator_ref = generator_ref
        self._task_id = generator_ref.task_id()
        self._worker: StreamReader | None = worker
        # Set once the task's error has been handed out (as the last ref).
        self._generator_task_exception: BaseException | None = None

    # -- the generator protocols --------------------------------------------------------------
    def __iter__(self) -> ObjectRefGenerator:
        return self

    def __next__(self) -> ObjectRef:
        """The next item's ref, waiting for the task to produce it. StopIteration at the end."""
        return self._next_sync()

    def __aiter__(self) -> ObjectRefGenerator:
        return self

    async def __anext__(self) -> ObjectRef:
        return await self._next_async()

    def send(self, value: Any) -> Any:
        raise NotImplementedError("`gen.send` is not supported.")

    def throw(self, *args: Any) -> Any:
        raise NotImplementedError("`gen.throw` is not supported.")

    def close(self) -> None:
        raise NotImplementedError("`gen.close` is not supported.")

    async def asend(self, value: Any) -> Any:
        raise NotImplementedError("`gen.asend` is not supported.")

    async def athrow(self, *args: Any) -> Any:
        raise NotImplementedError("`gen.athrow` is not supported.")

    async def aclose(self) -> None:
        raise NotImplementedError("`gen.aclose` is not supported.")

    # -- status ---------------------------------------------------------------------------------
    def completed(self) -> ObjectRef:
        """A ref that is ready when the task has ended: ``get`` gives None, or raises the
        task's error."""
        return self._generator_ref

    def next_ready(self) -> bool:
        """Whether ``next(gen)`` would return at once (False when it would raise StopIteration)."""
        if self.is_finished():
            return False
        worker = self._live_worker()
        return worker.memory_store.contains(worker.streams.next_id(self._task_id))

    def is_finished(self) -> bool:
        """Whether the task is over and every ref (the error's too) has been handed out."""
        worker = self._live_worker()
        if not worker.streams.at_end(self._task_id):
            return False
        if self._generator_task_exception is not None:
            return True
        completion = worker.memory_store.get(self._generator_ref.id)
        return completion is None or not completion.is_error

    # -- reading ---------------------------------------------------------------------------------
    def _next_id(self) -> Any:
        """The id whose arrival makes ``next`` ready (``wait`` on generators uses it)."""
        return self._live_worker().streams.next_id(self._task_id)

    def _get_next_ref(self) -> ObjectRef:
        return ObjectRef(self._next_id(), _add_ref=False)

    def _next_sync(self, timeout_s: float | None = None) -> ObjectRef:
        """The next item's ref; a nil ref if none arrives within ``timeout_s`` seconds
        (None or -1: wait as long as it takes)."""
        worker = self._live_worker()
        if self._generator_task_exception is not None:
            raise StopIteration
        timeout = None if timeout_s is None or timeout_s < 0 else timeout_s
        if not worker.objects.wait_local([worker.streams.next_id(self._task_id)], 1, timeout):
            return ObjectRef.nil()
        ref = worker.streams.take(self._task_id)
        if ref is not None:
            return ref
        completion = worker.memory_store.get(self._generator_ref.id)
        if completion is not None and completion.is_error:
            try:
                worker.objects.get([self._generator_ref], 0)
            except Exception as e:
                self._generator_task_exception = e
                return self._generator_ref
        raise StopIteration

    def _next_bulk_sync(self, max_refs: int, timeout_s: float | None = None) -> list[ObjectRef]:
        """Up to ``max_refs`` refs at once: waits up to ``timeout_s`` for the first, then
        takes those already here. ``[]`` when none came in time; StopIteration at the end."""
        if max_refs < 0:
            raise ValueError(f"max_refs must be >= 0, got {max_refs}")
        if max_refs == 0:
            return []
        first = self._next_sync(timeout_s)
        if first.is_nil():
            return []
        refs = [first]
        while len(refs) < max_refs and self.next_ready():
            refs.append(self._next_sync(0))
        return refs

    async def _next_async(self, timeout_s: float | None = None) -> ObjectRef:
        worker = self._live_worker()
        next_id = worker.streams.next_id(self._task_id)
        if not worker.memory_store.contains(next_id):
            loop = asyncio.get_running_loop()
            arrived: asyncio.Future[None] = loop.create_future()

            def ready(_obj: Any) -> None:
                loop.call_soon_threadsafe(resolve, arrived, None)

            worker.memory_store.on_ready(next_id, ready)
            try:
                await asyncio.wait_for(asyncio.shield(arrived), timeout_s)
            except asyncio.TimeoutError:
                return ObjectRef.nil()
        try:
            return self._next_sync(0)
        except StopIteration:
            raise StopAsyncIteration from None

    def _live_worker(self) -> StreamReader:
        worker = self._worker
        if worker is None or worker.closed:
            raise RaySystemError("the session that ran this generator task has been shut down")
        return worker

    # -- lifetime -------------------------------------------------------------------------------------
    def __del__(self) -> None:
        worker = self._worker
        if worker is not None and not worker.closed:
            try:
                worker.streams.drop_soon(self._task_id)  # no locks in a finalizer
            except Exception:  # interpreter shutdown
                pass

    def __getstate__(self) -> Any:
        raise TypeError(
            "You cannot return or pass a generator to other task. Serializing a "
            "ObjectRefGenerator is not allowed."
        )

    def __repr__(self) -> str:
        return f"ObjectRefGenerator({self._generator_ref.hex()})"


# Ray's earlier name for it.
StreamingObjectRefGenerator = ObjectRefGenerator
