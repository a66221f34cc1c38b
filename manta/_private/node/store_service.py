"""The node daemon's object store I/O: the arena file, spilling, and the store's RPCs.

The decisions are ``object_store.object_table.ObjectTable``'s; this shell answers writers
(``CreateObject`` -> space in the arena, ``SealObject``), readers (``PinObject`` -> where
to map it, ``UnpinObjects``) and owners (``FreeObjects``), and carries out spills and
restores on a thread so the event loop never waits for a disk.

A create that finds the store full makes room (drops, spills) and waits up to
``store_full_timeout_s`` for readers to unpin or owners to free; then it fails with an
``ObjectStoreFullError`` naming the biggest holders.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Hashable
from typing import Any

from manta._private.common.aio import spawn
from manta._private.common.clock import Clock
from manta._private.common.config import Config
from manta._private.common.ids import ObjectID, WorkerID
from manta._private.object_store.arena import PAGE, Arena, choose_path
from manta._private.object_store.object_table import ObjectTable
from manta._private.object_store.results import (
    Aborted,
    Action,
    AlreadyExists,
    Created,
    DeleteSpillFile,
    NeedsSpace,
    ObjectState,
    ObjectStatus,
    Pinned,
    Sealed,
    Spill,
    TooLarge,
    Unavailable,
)
from manta._private.object_store.spill import read_spill_file, remove_spill_file, spill_path, write_spill_file
from manta._private.rpc import messages as m
from manta.exceptions import ObjectStoreFullError, OutOfDiskError

logger = logging.getLogger(__name__)

# Pages are allocated this far ahead of the highest allocation, in the background.
_PREALLOCATE_AHEAD = 256 * 1024 * 1024


class StoreService:
    def __init__(self, config: Config, capacity: int, session_dir: str, clock: Clock) -> None:
        self._config = config
        # Objects start on page boundaries, and so do their large buffers (see layout).
        self.store = ObjectTable(capacity, clock, alignment=PAGE)
        # In /dev/shm when it has room; on disk (slower, with a warning) otherwise.
        path, self.warning = choose_path(session_dir, capacity)
        self.arena = Arena.create(path, capacity, fallocate=False)
        self.spill_dir = config.spill_dir or os.path.join(session_dir, "spill")
        os.makedirs(self.spill_dir, mode=0o700, exist_ok=True)
        self._sealed: dict[ObjectID, asyncio.Future[None]] = {}
        self._room = asyncio.Event()  # set whenever space may have come free
        self._spills_in_flight = 0
        self._preallocated = 0
        self._preallocating = False
        self._last_spill_error = ""
        # Since the node started, for its metrics: (objects, bytes) spilled and restored.
        self.spills = [0, 0]
        self.restores = [0, 0]

    def close(self) -> None:
        self.arena.unlink()
        self.arena.close()

    # -- writers ---------------------------------------------------------------------------
    async def create(self, client: Hashable, msg: m.CreateObject, *, primary: bool = True) -> m.ObjectCreated:
        """Space for a new object; a secondary copy (pulled from another node) may be
        dropped under pressure instead of spilled."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.store_full_timeout_s
        while True:
            result = self.store.create(msg.object_id, msg.size, msg.owner, client, primary=primary)
            if isinstance(result, Created):
                self.preallocate(result.offset + result.size)
                return m.ObjectCreated(result.offset, result.size)
            if isinstance(result, TooLarge):
                raise ObjectStoreFullError(result.message)
            if isinstance(result, AlreadyExists):
                # A task run again to rebuild a lost result writes the same ids again.
                if result.state is ObjectState.SEALED:
                    info = self.store.info(msg.object_id)
                    assert info is not None
                    return m.ObjectCreated(0, info.size, exists=True)  # that copy will do
                if result.state is ObjectState.SPILLED:
                    # Its file may be the lost copy: replace it with the new value.
                    self.execute(self.store.free([msg.object_id]))
                    continue
                raise ValueError(f"object {msg.object_id.hex()} is being written by another process")
            assert isinstance(result, NeedsSpace)
            if not await self._make_room(msg.size, deadline):
                raise ObjectStoreFullError(self._full_message(msg.object_id, msg.size))

    def seal(self, client: Hashable, msg: m.SealObject) -> None:
        self.execute(self.store.seal(msg.object_id, client))

    def abort(self, client: Hashable, msg: m.AbortObject) -> None:
        self.execute(self.store.abort(msg.object_id, client))
        self._room.set()

    # -- readers ---------------------------------------------------------------------------
    async def pin(self, client: Hashable, msg: m.PinObject) -> m.ObjectLocation | None:
        """Where to map the object, pinned for ``client``; None if it is not here."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.store_full_timeout_s
        while True:
            result = self.store.pin(msg.object_id, client)
            if isinstance(result, Pinned):
                return m.ObjectLocation(msg.object_id, result.offset, result.size)
            assert isinstance(result, Unavailable)
            status = result.status
            if status in (ObjectStatus.MISSING, ObjectStatus.FREED):
                return None
            if status is ObjectStatus.SPILLED:
                await self._restore(msg.object_id, deadline)
            else:  # being written or restored: wait until it is sealed
                await asyncio.shield(self._sealed_future(msg.object_id))

    def unpin(self, client: Hashable, msg: m.UnpinObjects) -> None:
        for object_id in msg.object_ids:
            self.execute(self.store.unpin(object_id, client))
        self._room.set()

    # -- owners and clients ----------------------------------------------------------------
    def free(self, object_ids: list[ObjectID]) -> None:
        self.execute(self.store.free(object_ids))
        self._room.set()

    def client_gone(self, client: Hashable) -> None:
        self.execute(self.store.client_gone(client))
        self._room.set()

    def owner_gone(self, owner: WorkerID) -> None:
        self.execute(self.store.owner_gone(owner))
        self._room.set()

    # -- actions ---------------------------------------------------------------------------
    def execute(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, (Sealed, Aborted)):
                self._wake(action.object_id)  # readers waiting for it look again
            elif isinstance(action, Spill):
                self._spills_in_flight += 1
                spawn(self._spill(action), "spilling an object")
            elif isinstance(action, DeleteSpillFile):
                asyncio.get_running_loop().run_in_executor(None, remove_spill_file, action.path)

    def _wake(self, object_id: ObjectID) -> None:
        """Readers waiting for the object to be sealed look again."""
        fut = self._sealed.pop(object_id, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _sealed_future(self, object_id: ObjectID) -> asyncio.Future[None]:
        fut = self._sealed.get(object_id)
        if fut is None:
            fut = self._sealed[object_id] = asyncio.get_running_loop().create_future()
        return fut

    async def _make_room(self, size: int, deadline: float) -> bool:
        """Evict or spill toward ``size`` free bytes, or wait for space; False at the deadline."""
        loop = asyncio.get_running_loop()
        self._room.clear()
        actions = self.store.evict_for(size)
        self.execute(actions)
        if actions:
            return True  # drops freed space at once; spills wake us when done
        left = deadline - loop.time()
        if left <= 0:
            return False
        try:
            await asyncio.wait_for(self._room.wait(), min(left, 1.0))
        except asyncio.TimeoutError:
            pass
        return loop.time() < deadline or self._spills_in_flight > 0

    async def _spill(self, action: Spill) -> None:
        path = spill_path(self.spill_dir, action.object_id)
        view = self.arena.view(action.offset, action.size)
        try:
            await asyncio.get_running_loop().run_in_executor(None, write_spill_file, path, view)
        except (OutOfDiskError, OSError) as e:
            self._last_spill_error = str(e)
            logger.error("spilling %s failed: %s", action.object_id.hex(), e)
            self.execute(self.store.spill_failed(action.object_id))
        else:
            self.execute(self.store.spilled(action.object_id, path))
            self.spills[0] += 1
            self.spills[1] += action.size
        finally:
            view.release()
            self._spills_in_flight -= 1
            self._room.set()

    async def _restore(self, object_id: ObjectID, deadline: float) -> None:
        while True:
            result = self.store.restore(object_id)
            if isinstance(result, Created):
                assert result.restore_from is not None
                dest = self.arena.writable_view(result.offset, result.size)
                try:
                    await asyncio.get_running_loop().run_in_executor(
                        None, read_spill_file, result.restore_from, dest
                    )
                except (OSError, ValueError) as e:
                    # The only copy is unreadable: the object is lost. Readers are told it
                    # is not here, and its owner makes it again if it can.
                    logger.error("object %s is lost: its spill file cannot be read: %s", object_id.hex(), e)
                    self.execute(self.store.abort(object_id, None))
                    self.execute(self.store.free([object_id]))
                    self._wake(object_id)
                    return
                finally:
                    dest.release()
                self.execute(self.store.restored(object_id))
                self.restores[0] += 1
                self.restores[1] += result.size
                return
            if isinstance(result, Unavailable):
                if result.status in (ObjectStatus.UNSEALED, ObjectStatus.RESTORING):
                    await asyncio.shield(self._sealed_future(object_id))
                return  # in memory again, or gone: the caller looks again
            assert isinstance(result, NeedsSpace)
            if not await self._make_room(result.size, deadline):
                raise ObjectStoreFullError(self._full_message(object_id, result.size))

    def _full_message(self, object_id: ObjectID, size: int) -> str:
        text = self.store.full_message(object_id, size)
        if self._last_spill_error:
            text += f" Spilling to {self.spill_dir} failed: {self._last_spill_error}"
        return text

    def preallocate(self, high_water: int) -> None:
        """Allocate the arena's pages ahead of use, off the event loop, so writers rarely
        take a page-allocating fault."""
        if self._preallocating or high_water + _PREALLOCATE_AHEAD // 2 < self._preallocated:
            return
        # Below the high-water mark the writer has touched (allocated) the pages itself.
        start = max(self._preallocated, high_water)
        end = min(self.arena.capacity, start + _PREALLOCATE_AHEAD)
        if end <= start:
            return
        self._preallocating = True

        def allocate() -> None:
            try:
                self.arena.fallocate(start, end - start)
            except OSError as e:
                logger.warning("preallocating the object store failed: %s", e)

        def done(_fut: Any) -> None:
            self._preallocating = False
            self._preallocated = max(self._preallocated, end)

        asyncio.get_running_loop().run_in_executor(None, allocate).add_done_callback(done)

    def statistics(self) -> Any:
        return self.store.stats()
