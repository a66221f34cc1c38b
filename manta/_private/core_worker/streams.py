"""The owner's side of generator tasks: the items each has produced so far.

A generator task sends every item to its owner as soon as it is made (``GeneratorItem``).
The owner keeps a ref to each item the caller has not taken yet and puts the item in the
memory store under ``ObjectID.for_return(task, index + 1)``, so the caller waits for the
next item exactly as it waits for any object. When the task ends, an end-of-stream marker
takes the slot after the last item: a reader waiting there wakes up and learns the stream
is over. Return index 0, the task's ordinary return, is the completion ref: None, or the
task's error.

Items of a retried task come again from index 0: those already here are dropped, so the
caller never sees an item twice. With backpressure, the reply to an item is held until
the caller has taken enough items, and the worker waits for that reply before it
produces the next one.

Items arrive on the I/O thread; the caller reads from its own thread: one lock guards
the table.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from manta._private import serialization
from manta._private.common.aio import resolve
from manta._private.common.ids import ObjectID, TaskID, WorkerID
from manta._private.core_worker.memory_store import MemoryStore, StoredObject
from manta._private.core_worker.object_ref import ObjectRef
from manta._private.core_worker.reference_counter import ReferenceCounter
from manta._private.rpc.messages import Address, ReturnObject
from manta.exceptions import RayTaskError

# Put in the memory store in the slot after a finished stream's last item.
END_OF_STREAM = StoredObject(None, None, -1, False)


class DynamicObjectRefGenerator:
    """The value of a ``num_returns="dynamic"`` task: the refs of every item it yielded,
    in order (and, if the generator raised, a last ref holding the error)."""

    def __init__(self, refs: list[ObjectRef]) -> None:
        self._refs = list(refs)

    def __iter__(self) -> Any:
        return iter(self._refs)

    def __len__(self) -> int:
        return len(self._refs)

    def __repr__(self) -> str:
        return f"DynamicObjectRefGenerator({len(self._refs)} refs)"


@dataclass(slots=True)
class _Stream:
    dynamic: bool
    backpressure: int  # <= 0: none
    # Items here that the caller has not taken, by index.
    unread: dict[int, ObjectRef] = field(default_factory=dict)
    arrived: set[int] = field(default_factory=set)
    taken: int = 0  # the caller has taken items 0 .. taken - 1
    end: int | None = None  # how many items there were, once the task is over
    # Replies to items that wait for the caller (backpressure): (index, reply).
    held: list[tuple[int, asyncio.Future[Any]]] = field(default_factory=list)


def item_id(task_id: TaskID, index: int) -> ObjectID:
    return ObjectID.for_return(task_id, index + 1)


class StreamTable:
    def __init__(
        self,
        memory_store: MemoryStore,
        references: ReferenceCounter,
        me: WorkerID,
        address: Callable[[], Address],
        free_copies: Callable[[list[ReturnObject]], None],
        call_soon: Callable[..., None],
    ) -> None:
        self._store = memory_store
        self._references = references
        self._me = me
        self._address = address
        self._free_copies = free_copies
        self._call_soon = call_soon
        self._lock = threading.Lock()
        self._streams: dict[TaskID, _Stream] = {}
        # Tasks some of whose items went to a node's store, and how many items they had
        # (see stored_item_ids).
        self._in_store: dict[TaskID, int] = {}
        self._dropped: deque[TaskID] = deque()  # see drop_soon

    def open(self, task_id: TaskID, dynamic: bool, backpressure: int) -> None:
        with self._lock:
            self._streams[task_id] = _Stream(dynamic, backpressure)

    # -- items arriving (I/O thread) --------------------------------------------------------
    def on_item(self, task_id: TaskID, index: int, item: ReturnObject) -> Any:
        """Take item ``index``; the reply to its sender: True, or a future that resolves
        once the caller has taken enough items (backpressure)."""
        if index < 0 or item.object_id != item_id(task_id, index):
            raise ValueError(f"item {index} of task {task_id.hex()} has the wrong id {item.object_id.hex()}")
        with self._lock:
            stream = self._streams.get(task_id)
            fresh = stream is not None and stream.end is None and index not in stream.arrived
            if fresh:
                assert stream is not None
                stream.arrived.add(index)
        if not fresh:
            self._repeat(item)
            return True
        oid = item.object_id
        self._references.add_owned(oid)
        if item.contained:
            self._references.add_returned(oid, [(n.object_id, n.owner) for n in item.contained], self._me)
        ref = ObjectRef(oid, self._address())
        with self._lock:
            if self._streams.get(task_id) is not stream:
                return True  # dropped meanwhile: ``ref`` goes, and the item is freed with it
            assert stream is not None
            stream.unread[index] = ref
            reply: Any = True
            if stream.backpressure > 0 and not self._may_continue(stream, index):
                reply = asyncio.get_running_loop().create_future()
                stream.held.append((index, reply))
        if item.node_id is not None:
            self._note_stored(task_id, oid)
        # After ``unread`` has it: a reader woken by the store finds it there.
        self._store.put(oid, StoredObject(item.inline, item.node_id, item.size, self._is_error(item)))
        return reply

    @staticmethod
    def _may_continue(stream: _Stream, index: int) -> bool:
        # After item ``index``, index + 1 - taken items wait unread: fewer than the limit.
        return index + 1 - stream.taken < stream.backpressure

    def _repeat(self, item: ReturnObject) -> None:
        """An item that came before (a retried attempt, or a re-run that rebuilds lost
        items), or that nobody will read (its stream was dropped)."""
        if item.contained:
            # Lent to us with the item; the first copy's (or nobody's) hold is the one kept.
            self._references.add_returned(None, [(n.object_id, n.owner) for n in item.contained], self._me)
        oid = item.object_id
        known = self._store.get(oid) if self._references.is_owned(oid) else None
        if self._references.is_owned(oid) and (known is None or known.node_id != item.node_id):
            # Still in use, and this copy is fresh: it takes the place of the one known (lost,
            # or on a node that may be gone), which is freed wherever it still is.
            if known is not None and not self._store.discard_if(oid, known):
                known = None  # replaced meanwhile: keep that one, drop this
            if known is not None or not self._store.contains(oid):
                self._store.put(oid, StoredObject(item.inline, item.node_id, item.size, self._is_error(item)))
                if item.node_id is not None:
                    self._note_stored(oid.task_id(), oid)
                if known is not None and known.node_id is not None:
                    self._free_copies([ReturnObject(oid, None, known.size, known.node_id)])
                return
        if item.node_id is not None and known is None:
            self._free_copies([item])  # nobody reads this copy

    @staticmethod
    def _is_error(item: ReturnObject) -> bool:
        return item.inline is not None and bool(
            serialization.inline_flags(item.inline) & serialization.FLAG_ERROR
        )

    def _note_stored(self, task_id: TaskID, oid: ObjectID) -> None:
        count = oid.return_index()  # item index + 1: how many items there are at least
        with self._lock:
            self._in_store[task_id] = max(self._in_store.get(task_id, 0), count)

    def stored_item_ids(self, task_id: TaskID) -> list[ObjectID]:
        """The ids of a task's items when some live in a node's store (the task is then
        kept in lineage while any is in use, so lost ones can be made again); else none."""
        with self._lock:
            count = self._in_store.get(task_id, 0)
        return [item_id(task_id, index) for index in range(count)]

    def forget(self, task_id: TaskID) -> None:
        """The task's lineage is released: none of its items is in use any more."""
        with self._lock:
            self._in_store.pop(task_id, None)

    # -- the task ending (any thread) ----------------------------------------------------------
    def dynamic_returns(self, task_id: TaskID, returns: list[ReturnObject]) -> list[ReturnObject]:
        """A dynamic generator task's return: a ``DynamicObjectRefGenerator`` of its items
        (the task's error, if it raised, as the last item), which holds them from now on."""
        with self._lock:
            stream = self._streams.pop(task_id, None)
        if stream is None or not stream.dynamic or len(returns) != 1:
            return returns
        refs = [stream.unread[i] for i in sorted(stream.unread)]
        ret = returns[0]
        if ret.inline is not None and self._is_task_error(ret.inline):
            error_id = item_id(task_id, max(stream.arrived, default=-1) + 1)
            self._references.add_owned(error_id)
            self._store.put(error_id, StoredObject(ret.inline, None, ret.size, True))
            refs.append(ObjectRef(error_id, self._address()))
        obj = serialization.serialize(DynamicObjectRefGenerator(refs))
        self._references.add_contained(ret.object_id, [(r.id, r.owner_address()) for r in refs])
        blob = serialization.to_inline(obj)
        return [ReturnObject(ret.object_id, blob, len(blob), None)]

    @staticmethod
    def _is_task_error(blob: bytes) -> bool:
        if not serialization.inline_flags(blob) & serialization.FLAG_ERROR:
            return False
        try:
            return isinstance(serialization.from_inline(blob), RayTaskError)
        except Exception:
            return False

    def finish(self, task_id: TaskID) -> None:
        """The task is over (its completion ref is set): mark the end of its stream."""
        with self._lock:
            stream = self._streams.get(task_id)
            if stream is None or stream.end is not None:
                return
            stream.end = max(stream.arrived, default=-1) + 1
            held, stream.held = stream.held, []
            end = stream.end
        self._release(held)
        self._store.put(item_id(task_id, end), END_OF_STREAM)

    def _release(self, held: list[tuple[int, asyncio.Future[Any]]]) -> None:
        for _index, reply in held:
            self._call_soon(resolve, reply, True)

    # -- the caller (its own thread) -------------------------------------------------------------
    def next_id(self, task_id: TaskID) -> ObjectID:
        """The id to wait on for the caller's next item (or the end of the stream)."""
        with self._lock:
            stream = self._streams.get(task_id)
            taken = stream.taken if stream is not None else 0
        return item_id(task_id, taken)

    def take(self, task_id: TaskID) -> ObjectRef | None:
        """The next item's ref, once it is here; None at the end of the stream."""
        with self._lock:
            stream = self._streams.get(task_id)
            if stream is None:
                return None
            index = stream.taken
            if self._store.get(item_id(task_id, index)) is END_OF_STREAM:
                return None
            ref = stream.unread.pop(index)
            stream.taken += 1
            free = [(i, r) for i, r in stream.held if self._may_continue(stream, i)]
            if free:
                stream.held = [h for h in stream.held if h not in free]
        self._release(free)
        return ref

    def at_end(self, task_id: TaskID) -> bool:
        """Whether the caller has taken every item of a finished stream."""
        with self._lock:
            stream = self._streams.get(task_id)
            return stream is None or (stream.end is not None and stream.taken >= stream.end)

    def drop_soon(self, task_id: TaskID) -> None:
        """``drop`` from a finalizer: that may run in any thread at any allocation, even
        one that holds this table's or the memory store's lock, so it takes no lock: the
        drop is queued (deque.append is atomic) and done on the I/O thread."""
        self._dropped.append(task_id)
        try:
            self._call_soon(self._drop_queued)
        except RuntimeError:
            pass  # the loop is gone, and the session with it

    def _drop_queued(self) -> None:
        while self._dropped:
            self.drop(self._dropped.popleft())

    def drop(self, task_id: TaskID) -> None:
        """The caller dropped the generator: forget its items (each freed once unreferenced)."""
        with self._lock:
            stream = self._streams.pop(task_id, None)
        if stream is None:
            return
        self._release(stream.held)
        if stream.end is not None:
            self._store.delete([item_id(task_id, stream.end)])
        stream.unread.clear()

    def __len__(self) -> int:
        return len(self._streams)
