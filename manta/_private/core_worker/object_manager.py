"""This process's view of objects: put, get, wait, and fetching from owners.

Values it owns live in the memory store (small) or in the node's store (large); values it
borrows are fetched from their owners and cached until the last local ref goes. Frees are
batched: refs dropped anywhere are collected on the next API call or every half second.

Refs found while loading values are registered with their owners (``borrowing``); an
object the store no longer has is made again by its owner (``recovery``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import logging
import mmap
import os
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from manta._private import serialization
from manta._private.common.aio import resolve, spawn
from manta._private.common.config import Config
from manta._private.common.ids import NodeID, ObjectID, WorkerID
from manta._private.core_worker import args as argpack
from manta._private.core_worker.borrowing import REGISTER_TIMEOUT_S, Borrowing
from manta._private.core_worker.memory_store import MemoryStore, StoredObject
from manta._private.core_worker.object_ref import ObjectRef
from manta._private.core_worker.peers import Peers
from manta._private.core_worker.recent_pins import RecentPins
from manta._private.core_worker.recovery import LossRecovery
from manta._private.core_worker.reference_counter import Freed, ReferenceCounter
from manta._private.core_worker.task_context import TaskHost
from manta._private.core_worker.task_manager import TaskManager
from manta._private.object_store.arena import Arena
from manta._private.object_store.layout import layout_size, read_object, write_object
from manta._private.rpc import messages as m
from manta._private.rpc.transport import Connection, ConnectionLost
from manta._private.serializability import inspect_serializability
from manta.exceptions import (
    GetTimeoutError,
    ObjectFreedError,
    ObjectLostError,
    OwnerDiedError,
    RayError,
    RayTaskError,
    TaskCancelledError,
)

logger = logging.getLogger(__name__)

# Called with each unhandled task error instead of logging it (Ray's
# ``ray._private.worker._unhandled_error_handler``, which the compat layer sets here).
unhandled_error_handler: Callable[[Exception], None] | None = None

COLLECT_INTERVAL_S = 0.5
# How many times one get() has a lost object made again before it gives up.
MAX_RECOVERIES = 3
# Store objects read lately stay mapped this long after their last read, at most this
# many and this share of the store's bytes (see recent_pins).
RECENT_PINS_KEEP_S = 1.0
RECENT_PINS_MAX = 32
RECENT_PINS_STORE_SHARE = 16


class ObjectManager:
    def __init__(
        self,
        peers: Peers,
        host: TaskHost,
        config: Config,
        memory_store: MemoryStore,
        references: ReferenceCounter,
        borrowing: Borrowing,
        task_manager: TaskManager,
        recovery: LossRecovery,
        arena_path: str,
    ) -> None:
        self._peers = peers
        self._host = host  # the running task: its puts are numbered, its CPU lent while blocked
        self._config = config
        self.memory_store = memory_store
        self.references = references
        self._borrowing = borrowing
        self._task_manager = task_manager
        self._recovery = recovery
        self._arena_path = arena_path
        # Dropped actor handles are applied with dropped refs: the actor client's
        # ``collect``, set once the client is made (it is made after this, from its parts).
        self.collect_actor_handles: Callable[[], None] = _nothing
        self._fetching: set[ObjectID] = set()
        # Of those, the ones freed here meanwhile (a get that timed out, its ref dropped):
        # their answer is not kept, as nothing would ever free it.
        self._abandoned: set[ObjectID] = set()
        self._blocked_depth = 0
        self._blocked_lock = threading.Lock()
        # Where owned objects were created, when config.record_callsites is on.
        self._call_sites: dict[ObjectID, str] = {}
        self._arena_map: Arena | None = None
        self._read_fd = -1
        self._unpins: deque[ObjectID] = deque()
        self._unpin_scheduled = False
        # Made with the first store read, sized by the store (see recent_pins).
        self._recent: RecentPins | None = None
        # Owned errors a get has raised: the others are reported when they are freed.
        self._seen_errors: set[ObjectID] = set()

    def start(self) -> None:
        """Begin collecting dropped refs periodically (I/O thread)."""
        self._peers.io.loop.call_later(COLLECT_INTERVAL_S, self._periodic_collect)

    def handle_get_object(self, _conn: Connection, msg: m.GetObject) -> Any:
        oid = msg.object_id
        obj = self.memory_store.get(oid)
        if obj is not None:
            return m.ObjectStatus(oid, True, obj.inline, obj.node_id, obj.size, "")
        if not self.references.is_owned(oid):
            return m.ObjectStatus(oid, False, None, None, 0, "freed")
        if not msg.wait:
            return m.ObjectStatus(oid, False, None, None, 0, "")
        loop = self._peers.io.loop
        reply: asyncio.Future[Any] = loop.create_future()

        def ready(o: StoredObject) -> None:
            status = m.ObjectStatus(oid, True, o.inline, o.node_id, o.size, "")
            loop.call_soon_threadsafe(resolve, reply, status)

        self.memory_store.on_ready(oid, ready)
        return reply

    def put(self, value: Any) -> ObjectRef:
        self.collect_references()
        return self.put_serialized(serialize_put_value(value))

    def put_serialized(self, obj: serialization.SerializedObject) -> ObjectRef:
        ctx = self._host.context
        oid = ObjectID.for_put(ctx.task_id, next(ctx.put_counter))
        self.record_call_site(oid)
        self.references.add_owned(oid)
        if obj.contained_refs:
            self.references.add_contained(oid, [(r.id, r.owner_address()) for r in obj.contained_refs])
        size = obj.total_size
        if size < self._config.max_inline_bytes:
            blob = serialization.to_inline(obj)
            self.memory_store.put(oid, StoredObject(blob, None, len(blob), obj.is_error()))
        else:
            size = self._write_store(oid, obj, self._peers.worker_id)
            self.memory_store.put(oid, StoredObject(None, self._peers.node_id, size, obj.is_error()))
        return ObjectRef(oid, self._peers.address)

    def store_return(
        self, object_id: ObjectID, obj: serialization.SerializedObject, owner: m.Address
    ) -> m.ReturnObject:
        """A task's return value: inline if small, else into this node's store. Refs
        inside it are lent to the task's owner first."""
        contained = self._borrowing.lend(obj.contained_refs, owner) if obj.contained_refs else None
        if obj.total_size < self._config.max_inline_bytes:
            blob = serialization.to_inline(obj)
            return m.ReturnObject(object_id, blob, len(blob), None, contained)
        size = self._write_store(object_id, obj, owner.worker_id)
        return m.ReturnObject(object_id, None, size, self._peers.node_id, contained)

    def _write_store(self, object_id: ObjectID, obj: serialization.SerializedObject, owner: WorkerID) -> int:
        """Copy ``obj`` into the node's arena (one memcpy per buffer) and seal it."""
        size = layout_size(len(obj.data), [b.nbytes for b in obj.buffers])
        created: m.ObjectCreated = self._peers.call_node(m.CreateObject(object_id, size, owner))
        if created.exists:  # a task run again to rebuild a lost result: the rest are there
            return created.size
        view = self._arena().writable_view(created.offset, created.size)
        try:
            write_object(view, obj.flags, obj.data, obj.buffers)
        except BaseException:
            self._peers.io.call_soon(self._peers.node_conn.notify, m.AbortObject(object_id))
            raise
        finally:
            view.release()
        self._peers.io.call_soon(self._peers.node_conn.notify, m.SealObject(object_id))
        return size

    def _arena(self) -> Arena:
        arena = self._arena_map
        if arena is None:
            arena = self._arena_map = Arena.open(self._arena_path)
        return arena

    def _map_store(self, object_id: ObjectID, node_id: NodeID | None) -> PinnedMapping:
        """Map the object read-only, to be read without a copy. The object stays pinned in
        the store while anything made from the mapping (an array) lives. One on another
        node (``node_id``) is copied to this node's store first."""
        mapping = self._recent.get(object_id) if self._recent is not None else None
        if mapping is None:
            source = node_id if node_id != self._peers.node_id else None
            location: m.ObjectLocation | None = self._peers.call_node(m.PinObject(object_id, source))
            if location is None:
                raise NotInStore(object_id)
            if self._read_fd < 0:
                self._read_fd = os.open(self._arena_path, os.O_RDONLY)
                store_bytes = os.fstat(self._read_fd).st_size
                self._recent = RecentPins(
                    RECENT_PINS_KEEP_S,
                    RECENT_PINS_MAX,
                    store_bytes // RECENT_PINS_STORE_SHARE,
                    time.monotonic,
                )
            mapping = PinnedMapping.of(self._read_fd, location.offset, location.size)
            weakref.finalize(mapping, self._unpin, object_id)
            assert self._recent is not None
            if self._recent.add(object_id, mapping, location.size):
                self._peers.io.call_soon(self._expire_recent)
        return mapping

    def _expire_recent(self) -> None:
        # I/O thread: armed when the cache asks for it (see RecentPins.add), again while it keeps any.
        assert self._recent is not None
        due = self._recent.expire()
        if due is not None:
            self._peers.io.loop.call_later(due, self._expire_recent)

    def _unpin(self, object_id: ObjectID) -> None:
        # From a finalizer: any thread, any time. Batched to the node by the I/O thread.
        self._unpins.append(object_id)
        if not self._unpin_scheduled and not self._peers.closed:
            self._unpin_scheduled = True
            try:
                self._peers.io.call_soon(self._send_unpins)
            except RuntimeError:  # the loop is gone: so are this process's pins
                pass

    def _send_unpins(self) -> None:
        self._unpin_scheduled = False
        ids = []
        while self._unpins:
            ids.append(self._unpins.popleft())
        if ids and not self._peers.node_conn.closed:
            self._peers.node_conn.notify(m.UnpinObjects(ids))

    def free_store_copies(self, returns: list[m.ReturnObject]) -> None:
        self._free_in_stores([(r.object_id, r.node_id) for r in returns if r.node_id is not None])

    def _free_in_stores(self, located: list[tuple[ObjectID, NodeID]]) -> None:
        """Free store objects wherever they live; this node's daemon forwards the frees of
        other nodes' objects."""
        by_node: dict[NodeID, list[ObjectID]] = {}
        for object_id, node_id in located:
            by_node.setdefault(node_id, []).append(object_id)
        for node_id, ids in by_node.items():
            where = None if node_id == self._peers.node_id else node_id
            self._peers.io.call_soon(self._peers.node_conn.notify, m.FreeObjects(ids, where))

    def arg_value(self, ref: ObjectRef) -> m.ArgValue:
        """A ready object as a resolved argument."""
        obj = self.memory_store.get(ref.id)
        if obj is None:
            raise ObjectFreedError(ref.hex())
        return m.ArgValue(ref.id, obj.inline, obj.node_id, obj.size)

    def record_call_site(self, object_id: ObjectID) -> None:
        if self._config.record_callsites:
            self._call_sites[object_id] = user_call_site()

    def call_site(self, object_id: ObjectID) -> str:
        return self._call_sites.get(object_id, "")

    def collect_references(self) -> None:
        self.collect_actor_handles()
        freed = self.references.collect()
        while freed:
            self._free(freed)
            # Tasks none of whose results are in use any more need no lineage.
            self._task_manager.release_lineage([f.object_id for f in freed if f.owned])
            freed = self.references.collect()

    def _free(self, freed: list[Freed]) -> None:
        in_store: list[tuple[ObjectID, NodeID]] = []
        done_borrowing: dict[WorkerID, tuple[m.Address, list[Freed]]] = {}
        for f in freed:
            self._call_sites.pop(f.object_id, None)
            if f.owned:
                obj = self.memory_store.get(f.object_id)
                if obj is not None and obj.node_id is not None:
                    in_store.append((f.object_id, obj.node_id))
                if obj is not None and obj.is_error:
                    self._report_unhandled(f.object_id, obj)
            elif f.owner is not None:
                done_borrowing.setdefault(f.owner.worker_id, (f.owner, []))[1].append(f)
            if f.object_id in self._fetching:
                self._abandoned.add(f.object_id)
        self.memory_store.forget(f.object_id for f in freed)
        if self._recent is not None:
            self._recent.drop(f.object_id for f in freed)
        if in_store:
            self._free_in_stores(in_store)
        for owner, done in done_borrowing.values():
            msg = m.RemoveBorrower(
                [f.object_id for f in done], self._peers.worker_id, [f.registrations for f in done]
            )
            self._peers.io.call_soon(self._borrowing.start_notify, owner, msg)

    def _report_unhandled(self, object_id: ObjectID, obj: StoredObject) -> None:
        """A failed task's error nobody looked at is logged once, as it goes (as in Ray)."""
        if object_id in self._seen_errors:
            self._seen_errors.discard(object_id)
            return
        # Read now, not at start: programs switch it on and off around code they expect to fail.
        if obj.inline is None or Config.from_env().ignore_unhandled_errors:
            return
        try:
            error = serialization.from_inline(obj.inline)
        except Exception:
            return
        if isinstance(error, RayTaskError) and not isinstance(error, TaskCancelledError):
            handler = unhandled_error_handler
            if handler is not None:
                handler(error)
            else:
                logger.error("Unhandled error (suppress with 'MANTA_IGNORE_UNHANDLED_ERRORS=1'): %s", error)

    def _periodic_collect(self) -> None:
        if self._peers.closed:
            return
        self.collect_references()
        self._peers.io.loop.call_later(COLLECT_INTERVAL_S, self._periodic_collect)

    def references_report(self) -> list[m.ReferenceInfo]:
        """Every object this process knows and why it stays alive (for memory reports)."""
        report = []
        for object_id, owned, local, submitted, contained, borrowers, pinned in self.references.snapshot():
            obj = self.memory_store.get(object_id)
            if obj is None:
                where, size = "pending", 0
            else:
                where, size = ("store", obj.size) if obj.node_id is not None else ("inline", obj.size)
            report.append(
                m.ReferenceInfo(
                    object_id,
                    owned,
                    local,
                    submitted,
                    contained,
                    borrowers,
                    pinned,
                    size,
                    where,
                    self.call_site(object_id),
                )
            )
        return report

    def request_object(self, ref: ObjectRef) -> None:
        """Make sure the object will arrive in the memory store (fetch it if borrowed)."""
        oid = ref.id
        self._abandoned.discard(oid)  # (wanted again: a fetch under way is kept after all)
        if self.memory_store.contains(oid) or self.references.is_owned(oid) or oid in self._fetching:
            return
        owner = ref.owner_address()
        if owner is None or owner.worker_id == self._peers.worker_id:
            self.memory_store.put(oid, self.error_object(ObjectFreedError(oid.hex())))
            return
        self._fetching.add(oid)
        self._peers.io.call_soon(self._start_fetch, oid, owner)

    def _start_fetch(self, oid: ObjectID, owner: m.Address) -> None:
        spawn(self._fetch(oid, owner), "fetching an object from its owner")

    async def _fetch(self, oid: ObjectID, owner: m.Address) -> None:
        answer: Any
        try:
            conn = await self._peers.connect_worker(owner)
            answer = await conn.call(m.GetObject(oid, True))
        except Exception as e:
            answer = e
        finally:
            self._fetching.discard(oid)
        if oid in self._abandoned:
            self._abandoned.discard(oid)
        else:
            self.memory_store.put(oid, fetch_outcome(oid, owner, answer, os.getpid()))

    @staticmethod
    def error_object(error: BaseException) -> StoredObject:
        blob = serialization.to_inline(serialization.serialize(error, serialization.FLAG_ERROR))
        return StoredObject(blob, None, len(blob), True)

    @staticmethod
    def is_error_blob(blob: bytes) -> bool:
        return bool(serialization.inline_flags(blob) & serialization.FLAG_ERROR)

    def get(self, refs: list[ObjectRef], timeout: float | None) -> list[Any]:
        loaded = self._get(refs, timeout, self._load)
        return [value_or_raise(value, is_error) for value, is_error in loaded]

    def get_serialized(
        self, refs: list[ObjectRef], timeout: float | None
    ) -> list[serialization.SerializedObject]:
        """``get``, for a remote driver's session: the objects as stored, unread (the
        client loads them); when one is an error, only that one."""
        return [obj for obj, _ in self._get(refs, timeout, self._load_serialized)]

    def _get(
        self, refs: list[ObjectRef], timeout: float | None, load: Callable[[StoredObject, ObjectID], Any]
    ) -> list[tuple[Any, bool]]:
        self.collect_references()
        deadline = None if timeout is None else time.monotonic() + timeout
        distinct = len({r.id for r in refs})
        lost_id = refs[0].id if refs else None
        for _attempt in range(MAX_RECOVERIES + 1):
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            ready = self._wait_ready(refs, distinct, left, for_get=True)
            if len(ready) < distinct:  # woken by an error: that is what the get raises
                failed = self._first_error(refs, ready)
                assert failed is not None
                for ref in refs:  # errors already here count as seen: the caller handled this get
                    obj = self.memory_store.get(ref.id) if ref.id in ready else None
                    if obj is not None and obj.is_error and self.references.is_owned(ref.id):
                        self._seen_errors.add(ref.id)
                refs = [failed]
            outer = serialization.start_loading()
            try:
                loaded = [self._load_ref(r, load) for r in refs]
            except NotInStore as lost:
                lost_id = lost.object_id
                self._recovery.recover(next(r for r in refs if r.id == lost_id), lost.stale)
                continue
            finally:
                nested = serialization.end_loading(outer)
            if nested:
                left = REGISTER_TIMEOUT_S if deadline is None else deadline - time.monotonic()
                self._borrowing.register_loaded(nested, min(left, REGISTER_TIMEOUT_S))
            for ref, (_value, is_error) in zip(refs, loaded, strict=True):
                if is_error and self.references.is_owned(ref.id):
                    self._seen_errors.add(ref.id)
            return loaded
        assert lost_id is not None
        raise ObjectLostError(
            lost_id.hex(), detail=f"Its store copy was lost {MAX_RECOVERIES + 1} times in a row."
        )

    def wait(
        self,
        refs: list[ObjectRef],
        num_returns: int,
        timeout: float | None,
        fetch_local: bool,
        stream_ids: tuple[ObjectID, ...] = (),
    ) -> set[ObjectID]:
        """The ids (of ``refs``, and of generators' next items ``stream_ids``) ready once
        ``num_returns`` of them are, or ``timeout`` passes."""
        return self._wait_ready(refs, num_returns, timeout, for_get=False, stream_ids=stream_ids)

    def _wait_ready(
        self,
        refs: list[ObjectRef],
        num_ready: int,
        timeout: float | None,
        for_get: bool,
        stream_ids: tuple[ObjectID, ...] = (),
    ) -> set[ObjectID]:
        ids = [*(r.id for r in refs), *stream_ids]
        if sum(self.memory_store.contains(i) for i in set(ids)) < num_ready:
            for ref in refs:
                if not self.memory_store.contains(ref.id):
                    self.request_object(ref)
        # A get raises the first error as soon as there is one, as in Ray, rather than wait
        # for the other objects (which may never come).
        if for_get:
            ready = self._wait_for_get(refs, ids, num_ready, timeout)
        else:
            ready = self.wait_local(ids, num_ready, timeout)
        if for_get and len(ready) < num_ready and not self._first_error(refs, ready):
            raise GetTimeoutError(
                f"Get timed out: some object(s) not ready ({num_ready - len(ready)} of {num_ready} "
                f"after {timeout:.3g} s)."
            )
        return ready

    def _wait_for_get(
        self, refs: list[ObjectRef], ids: list[ObjectID], num_ready: int, timeout: float | None
    ) -> set[ObjectID]:
        """Wait as a get does; one still blocked after ``get_warning_threshold_s`` logs,
        once, why (what ``manta why`` says of the first object missing)."""
        threshold, started = self._config.get_warning_threshold_s, time.monotonic()
        if threshold <= 0 or (timeout is not None and timeout <= threshold):
            return self.wait_local(ids, num_ready, timeout, stop_on_error=True)
        ready = self.wait_local(ids, num_ready, threshold, stop_on_error=True)
        if len(ready) >= num_ready or self._first_error(refs, ready):
            return ready
        missing = next(r for r in refs if r.id not in ready)
        # Asked on the I/O loop: the get waits on at once, whatever the gcs takes to answer.
        self._peers.io.submit(self._log_why_blocked(missing.id, num_ready - len(ready), threshold))
        left = None if timeout is None else max(timeout - (time.monotonic() - started), 0.0)
        return self.wait_local(ids, num_ready, left, stop_on_error=True)

    async def _log_why_blocked(self, missing: ObjectID, count: int, waited: float) -> None:
        try:
            lines = await asyncio.wait_for(self._peers.gcs_call(m.ExplainTask(bytes(missing.task_id()))), 10)
        except Exception as e:  # an explanation is a courtesy: the get goes on without one
            lines = [f"(no explanation: {e})"]
        logger.warning(
            "get() has been blocked for %g s on %d object(s); the first missing, %s:\n  %s",
            waited,
            count,
            missing.hex(),
            "\n  ".join(lines),
        )

    def _first_error(self, refs: list[ObjectRef], ready: set[ObjectID]) -> ObjectRef | None:
        for ref in refs:
            obj = self.memory_store.get(ref.id) if ref.id in ready else None
            if obj is not None and obj.is_error:
                return ref
        return None

    def wait_local(
        self, ids: list[ObjectID], num_ready: int, timeout: float | None, stop_on_error: bool = False
    ) -> set[ObjectID]:
        """Wait for objects to reach this process's memory store (lending the task's CPU
        while blocked), without asking anyone for them."""
        ready = {i for i in ids if self.memory_store.contains(i)}
        if len(ready) >= num_ready:
            return ready
        blocked = self._notify_blocked()
        try:
            return self.memory_store.wait(ids, num_ready, timeout, stop_on_error)
        finally:
            if blocked:
                self._notify_unblocked()

    def _notify_blocked(self) -> bool:
        # A task blocked in get/wait lends its CPU back so nested tasks can run.
        if self._host.is_driver or not self._host.task_running():
            return False
        # Threaded actors block from several threads: count, and queue the notices in order.
        with self._blocked_lock:
            self._blocked_depth += 1
            if self._blocked_depth == 1:
                self._peers.io.call_soon(self._peers.node_conn.notify, m.WorkerBlocked())
        return True

    def _notify_unblocked(self) -> None:
        with self._blocked_lock:
            self._blocked_depth -= 1
            if self._blocked_depth == 0:
                self._peers.io.call_soon(self._peers.node_conn.notify, m.WorkerUnblocked())

    def _load_ref(self, ref: ObjectRef, load: Callable[[StoredObject, ObjectID], Any]) -> tuple[Any, bool]:
        """(value, whether it is an error to raise) of a ready object."""
        obj = self.memory_store.get(ref.id)
        if obj is None:  # freed between the wait and now
            raise ObjectFreedError(ref.hex())
        try:
            return load(obj, ref.id), obj.is_error
        except NotInStore as lost:
            lost.stale = obj
            raise

    def _load(self, obj: StoredObject | m.ArgValue, object_id: ObjectID) -> Any:
        if obj.inline is not None:
            return serialization.from_inline(obj.inline)
        _flags, data, buffers = read_object(self._map_store(object_id, obj.node_id).object_view())
        return serialization.deserialize(data, buffers)

    def _load_serialized(self, obj: StoredObject, object_id: ObjectID) -> serialization.SerializedObject:
        if obj.inline is not None:
            return serialization.unpack_inline(obj.inline)
        # Views of the mapping: the object stays pinned until they are gone.
        flags, data, buffers = read_object(self._map_store(object_id, obj.node_id).object_view())
        return serialization.SerializedObject(data, buffers, flags)

    def load_args(self, spec: m.TaskSpec) -> tuple[tuple[Any, ...], dict[str, Any]]:
        outer = serialization.start_loading()
        try:
            values = [self._load(arg, arg.object_id) for arg in spec.ref_args]
            args = argpack.unpack(spec.args, values)
        except NotInStore as lost:
            raise ArgumentLost(
                lost.object_id.hex(), detail="Its store copy was lost while the task was starting."
            ) from None
        finally:
            nested = serialization.end_loading(outer)
        if nested:
            self._borrowing.register_loaded(nested)
        return args

    def object_future(self, ref: ObjectRef) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.request_object(ref)

        def materialize() -> None:
            if future.cancelled():
                return
            try:
                value = self.get([ref], None)[0]
            except BaseException as e:
                future.set_exception(e)
            else:
                future.set_result(value)

        def ready(_obj: StoredObject) -> None:
            # Loading may wait on the node daemon or on owners: never on the I/O thread.
            if self._peers.io.in_loop_thread():
                self._peers.io.loop.run_in_executor(None, materialize)
            else:
                materialize()

        self.memory_store.on_ready(ref.id, ready)
        return future


def _nothing() -> None:
    pass


class ArgumentLost(ObjectLostError):
    """A task's argument was lost from the store before the task could run; the task's
    owner can have it made again and run the task then."""


class NotInStore(Exception):
    """The node's store no longer has an object this process was told is there."""

    def __init__(self, object_id: ObjectID) -> None:
        super().__init__(object_id.hex())
        self.object_id = object_id
        self.stale: StoredObject | None = None


def serialize_put_value(value: Any) -> serialization.SerializedObject:
    """``value`` serialized for ``put``; when it does not pickle, a TypeError saying which
    part of it does not."""
    try:
        return serialization.serialize(value)
    except Exception as e:
        report = io.StringIO()
        inspect_serializability(value, print_file=report)  # which member does not pickle
        raise TypeError(
            f"Could not serialize the put value {argpack.short_repr(value)} of type "
            f"{type(value).__name__}: {e}\n{report.getvalue()}"
        ) from e


def value_or_raise(value: Any, is_error: bool) -> Any:
    """What a get returns for a loaded object: the value, or its error raised."""
    if is_error:
        if isinstance(value, RayTaskError):
            raise value.as_instanceof_cause()
        if isinstance(value, BaseException):
            raise value
    return value


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def user_call_site() -> str:
    """``file:line in function`` of the innermost caller outside the manta package."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return ""
    return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"


class PinnedMapping(mmap.mmap):
    """A read-only mapping of one object's pages of the arena. Views of the object (and
    arrays made from them) keep it alive; when it goes, the object is unpinned."""

    start: int
    length: int

    @classmethod
    def of(cls, fd: int, offset: int, size: int) -> PinnedMapping:
        page = mmap.ALLOCATIONGRANULARITY
        base = offset // page * page
        length = max(offset + size - base, 1)
        mapping = cls(fd, length, mmap.MAP_SHARED, mmap.PROT_READ, offset=base)
        mapping.start = offset - base
        mapping.length = size
        return mapping

    def object_view(self) -> memoryview:
        return memoryview(self)[self.start : self.start + self.length]


def fetch_outcome(
    oid: ObjectID, owner: m.Address, reply: m.ObjectStatus | Exception, this_pid: int
) -> StoredObject:
    """What a borrower stores for ``oid`` once its owner answered ``GetObject`` with
    ``reply`` (or asking failed with it): the value, or the error a get of it raises.
    ``this_pid`` is this process's, to tell an owner that was an earlier session of it."""
    if isinstance(reply, (ConnectionLost, OSError)):
        detail = str(reply)
        if owner.pid == this_pid:
            detail = (
                "It belongs to an earlier session of this process: manta.shutdown() ends a "
                "session and frees the objects it owned."
            )
        error: RayError = OwnerDiedError(
            oid.hex(), f"{owner.host}:{owner.port} pid={owner.pid}", detail=detail
        )
        return ObjectManager.error_object(error)
    if isinstance(reply, Exception):
        return ObjectManager.error_object(ObjectLostError(oid.hex(), detail=str(reply)))
    if reply.missing:
        return ObjectManager.error_object(ObjectFreedError(oid.hex()))
    is_error = reply.inline is not None and ObjectManager.is_error_blob(reply.inline)
    return StoredObject(reply.inline, reply.node_id, reply.size, is_error)
