"""The node's object table: allocation, sealing, pins, eviction and spilling decisions.

A pure state machine that the node daemon owns. Every method is an event (a client asks
to create, seal or pin; a spill finished; a client disconnected) and returns a result or
a list of actions for the daemon's I/O shell to carry out. The table never blocks, never
touches memory or files, and reads time only from the injected clock (for LRU order and
the idle times in ``stats``).

An object's life::

    create ──▶ CREATED ──seal──▶ SEALED ──Spill/spilled──▶ SPILLED ──restore──▶ CREATED
                  │abort           │ evicted (secondary copy,          (restoring) │
                  ▼                ▼  or one already on disk)          restored ──▶ SEALED
                (gone)           (gone, or SPILLED)

- A *primary* copy is the one its owner counts on (created by ``put`` or a task's return
  on this node); it is never dropped, only spilled. A *secondary* copy (pulled from
  another node) and any copy that also lives in a spill file are dropped freely.
- A *pin* is held by a client (any hashable: a connection) while it has views of the
  object mapped. Pinned objects are neither evicted nor spilled, and their memory outlives
  a ``free`` until the last pin goes: a reader's numpy array stays valid.
- Eviction is LRU by the time an object was last sealed, pinned or unpinned.
- Requests that make no sense (sealing an object nobody created) raise
  ``StoreRequestError``; the daemon answers the client with it and keeps serving. Requests
  that can race with the object's end (unpin, free, client_gone) are idempotent.

How the daemon drives a create (a restore is the same with ``restore``)::

    result = store.create(object_id, size, owner, client)
    while isinstance(result, NeedsSpace):
        actions = store.evict_for(size)      # drops are done; Spill actions are to do
        run each Spill off the loop (spill.write_spill_file), then spilled() / spill_failed()
        if no action and no spill in flight: wait for an unpin, free or client_gone, and
            after a grace period fail with ObjectStoreFullError(store.full_message(...))
        result = store.create(object_id, size, owner, client)
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from manta._private.common.clock import Clock
from manta._private.common.ids import ObjectID, WorkerID
from manta._private.object_store.allocator import ALIGNMENT, Allocator, aligned
from manta._private.object_store.results import (
    Aborted,
    Action,
    AlreadyExists,
    Created,
    CreateResult,
    DeleteSpillFile,
    Evicted,
    NeedsSpace,
    ObjectInfo,
    ObjectState,
    ObjectStatus,
    Pinned,
    PinResult,
    RestoreResult,
    Sealed,
    Spill,
    StoreRequestError,
    TooLarge,
    Unavailable,
)
from manta._private.object_store.stats import Holder, OwnerUsage, StoreStats
from manta.exceptions import InternalError


@dataclass(slots=True)
class _Entry:
    object_id: ObjectID
    size: int
    owner: WorkerID
    primary: bool
    state: ObjectState
    offset: int | None
    last_access: float
    writer: Hashable | None = None  # the client filling a CREATED object; None for restores
    pins: dict[Hashable, int] = field(default_factory=dict)
    spill_path: str | None = None
    spilling: bool = False
    freed: bool = False  # the owner freed it; it goes when pins and in-flight I/O end

    @property
    def restoring(self) -> bool:
        return self.state is ObjectState.CREATED and self.writer is None

    @property
    def droppable(self) -> bool:
        """Its memory can go without writing anything: a secondary or already on disk."""
        return not self.primary or self.spill_path is not None


def _writing_status(entry: _Entry) -> ObjectStatus:
    return ObjectStatus.RESTORING if entry.restoring else ObjectStatus.UNSEALED


class ObjectTable:
    """The object table of one arena of ``capacity`` bytes."""

    def __init__(self, capacity: int, clock: Clock, alignment: int = ALIGNMENT) -> None:
        self.clock = clock
        self.allocator = Allocator(capacity, alignment)
        self._objects: dict[ObjectID, _Entry] = {}
        # Eviction candidates in LRU order (sealed, unpinned, no I/O in flight, not freed).
        self._droppable: OrderedDict[ObjectID, None] = OrderedDict()
        self._spillable: OrderedDict[ObjectID, None] = OrderedDict()
        self._spilling: set[ObjectID] = set()
        self._pinned_by: dict[Hashable, set[ObjectID]] = {}
        self._writing_by: dict[Hashable, set[ObjectID]] = {}

    @property
    def capacity(self) -> int:
        return self.allocator.capacity

    # -- writing ---------------------------------------------------------------------------
    def create(
        self, object_id: ObjectID, size: int, owner: WorkerID, client: Hashable, *, primary: bool = True
    ) -> CreateResult:
        """Allocate ``size`` bytes for a new object written by ``client``.

        Nothing changes unless the result is ``Created``. On ``NeedsSpace`` the caller
        runs ``evict_for(size)`` and retries; on ``TooLarge`` it never fits."""
        if type(size) is not int or size < 0:
            raise StoreRequestError(f"object {object_id.hex()}: size {size!r} is not a whole number of bytes")
        entry = self._objects.get(object_id)
        if entry is not None:
            return AlreadyExists(object_id, entry.state)
        offset = self._allocate(object_id, size)
        if not isinstance(offset, int):
            return offset
        self._objects[object_id] = _Entry(
            object_id, size, owner, primary, ObjectState.CREATED, offset, self.clock.monotonic(), client
        )
        self._writing_by.setdefault(client, set()).add(object_id)
        return Created(object_id, offset, size)

    def seal(self, object_id: ObjectID, client: Hashable) -> list[Action]:
        """``client`` finished writing: the object is immutable and readable from now on."""
        entry = self._expect_writing(object_id, "seal", client)
        self._stop_writing(entry)
        return self._become_sealed(entry)

    def abort(self, object_id: ObjectID, client: Hashable | None) -> list[Action]:
        """``client`` (None: the daemon's own restore) failed midway: free the space; nothing
        partial stays. An aborted restore leaves the object spilled, as it was."""
        return self._abort(self._expect_writing(object_id, "abort", client))

    def _expect_writing(self, object_id: ObjectID, verb: str, client: Hashable | None) -> _Entry:
        entry = self._expect(object_id, verb)
        if entry.state is not ObjectState.CREATED or entry.writer != client:
            whose = "" if entry.state is not ObjectState.CREATED else " by someone else"
            raise StoreRequestError(
                f"cannot {verb} object {object_id.hex()}: it is {self._describe(entry)}{whose}"
            )
        return entry

    # -- reading ---------------------------------------------------------------------------
    def pin(self, object_id: ObjectID, client: Hashable) -> PinResult:
        """Keep the object in memory while ``client`` reads it (pins count per client)."""
        entry = self._objects.get(object_id)
        if entry is None:
            return Unavailable(object_id, ObjectStatus.MISSING)
        if entry.freed:
            return Unavailable(object_id, ObjectStatus.FREED)
        if entry.state is ObjectState.SPILLED:
            return Unavailable(object_id, ObjectStatus.SPILLED)
        if entry.state is ObjectState.CREATED:
            return Unavailable(object_id, _writing_status(entry))
        assert entry.offset is not None
        entry.pins[client] = entry.pins.get(client, 0) + 1
        self._pinned_by.setdefault(client, set()).add(object_id)
        self._touch(entry)
        return Pinned(object_id, entry.offset, entry.size)

    def unpin(self, object_id: ObjectID, client: Hashable) -> list[Action]:
        """Drop one of ``client``'s pins; unknown objects and pins are ignored."""
        entry = self._objects.get(object_id)
        if entry is None or client not in entry.pins:
            return []
        entry.pins[client] -= 1
        if entry.pins[client] == 0:
            del entry.pins[client]
            self._forget_pin(client, object_id)
        self._touch(entry)
        return self._reap(entry)

    def client_gone(self, client: Hashable) -> list[Action]:
        """``client`` disconnected: drop its pins and abort what it was still writing."""
        actions: list[Action] = []
        for object_id in sorted(self._pinned_by.pop(client, set())):  # sorted: deterministic
            entry = self._objects[object_id]
            del entry.pins[client]
            self._touch(entry)
            actions += self._reap(entry)
        for object_id in sorted(self._writing_by.get(client, set())):
            actions += self._abort(self._objects[object_id])
        return actions

    # -- the owner's decisions ---------------------------------------------------------------
    def free(self, object_ids: Iterable[ObjectID]) -> list[Action]:
        """Nobody needs these any more: free their memory and delete their spill files.
        Pinned objects and those with I/O in flight go when that ends. Unknown ids are
        ignored (already freed, or never here)."""
        actions: list[Action] = []
        for object_id in object_ids:
            entry = self._objects.get(object_id)
            if entry is None or entry.freed:
                continue
            entry.freed = True
            self._classify(entry)
            actions += self._reap(entry)
        return actions

    def owner_gone(self, owner: WorkerID) -> list[Action]:
        """The owner died: its objects die with it (ARCHITECTURE.md section 2)."""
        return self.free([e.object_id for e in self._objects.values() if e.owner == owner])

    # -- memory pressure -----------------------------------------------------------------------
    def evict_for(self, size: int) -> list[Action]:
        """Make room for an object of ``size`` bytes.

        Drops unpinned droppable copies (secondary, or already on disk) in LRU order; if
        that cannot make a large enough free block, also spills unpinned primary copies
        (LRU). Victims are taken in that order until, with their free neighbours, they
        form one free block of the needed size (free space may be fragmented); only the
        victims inside that block are then dropped or spilled. Drops take effect now,
        spills when ``spilled`` is called.

        Returns [] and changes nothing when the space is already free or will be once the
        spills in flight finish, and also when even all candidates together would not make
        room (the rest is pinned or being written): then the caller waits for unpins and
        frees, or gives up with ``full_message``."""
        needed = aligned(size, self.allocator.alignment)
        if needed > self.capacity:
            return []
        plan = self.allocator.release_plan()
        for object_id in self._spilling:
            entry = self._objects[object_id]
            if not entry.pins and entry.offset is not None:
                plan.release(entry.offset)
        if plan.largest >= needed:
            return []
        victims: list[_Entry] = []
        for candidates in (self._droppable, self._spillable):
            for object_id in candidates:
                entry = self._objects[object_id]
                assert entry.offset is not None
                victims.append(entry)
                if plan.release(entry.offset) >= needed:
                    break
            if plan.largest >= needed:
                break
        if plan.largest < needed:
            return []
        start, end = plan.best
        actions: list[Action] = []
        for entry in victims:
            assert entry.offset is not None
            if not start <= entry.offset < end:
                continue  # freeing it would not have helped this block
            if entry.droppable:
                actions.append(self._drop_from_memory(entry))
            else:
                entry.spilling = True
                self._spilling.add(entry.object_id)
                self._classify(entry)
                actions.append(Spill(entry.object_id, entry.offset, entry.size))
        return actions

    def spilled(self, object_id: ObjectID, path: str) -> list[Action]:
        """A ``Spill`` finished: the object is in the file at ``path``. Its memory is freed
        now, unless a reader pinned it meanwhile (then it goes when evicted later)."""
        entry = self._expect(object_id, "mark spilled")
        if not entry.spilling:
            raise StoreRequestError(f"object {object_id.hex()} was not being spilled")
        entry.spilling = False
        self._spilling.discard(object_id)
        entry.spill_path = path
        if entry.freed:
            return self._reap(entry)
        if entry.pins:
            self._classify(entry)
            return []
        self._drop_from_memory(entry)
        return []

    def spill_failed(self, object_id: ObjectID) -> list[Action]:
        """A ``Spill`` failed (the spill file was removed): the object stays in memory as before."""
        entry = self._expect(object_id, "fail the spill of")
        if not entry.spilling:
            raise StoreRequestError(f"object {object_id.hex()} was not being spilled")
        entry.spilling = False
        self._spilling.discard(object_id)
        self._classify(entry)
        return self._reap(entry)

    def restore(self, object_id: ObjectID) -> RestoreResult:
        """Allocate arena space to read a spilled object back into.

        ``Created(restore_from=path)``: read the file into that space, then call
        ``restored`` (or ``abort`` if reading failed). ``NeedsSpace``: ``evict_for`` and
        retry. ``Unavailable``: nothing to do now (see its status)."""
        entry = self._objects.get(object_id)
        if entry is None:
            return Unavailable(object_id, ObjectStatus.MISSING)
        if entry.freed:
            return Unavailable(object_id, ObjectStatus.FREED)
        if entry.state is ObjectState.SEALED:
            return Unavailable(object_id, ObjectStatus.IN_MEMORY)
        if entry.state is ObjectState.CREATED:
            return Unavailable(object_id, _writing_status(entry))
        offset = self._allocate(object_id, entry.size)
        if not isinstance(offset, int):
            if isinstance(offset, TooLarge):  # the store shrank under a spilled object
                raise InternalError(offset.message)
            return offset
        assert entry.spill_path is not None
        entry.state = ObjectState.CREATED
        entry.offset = offset
        return Created(object_id, offset, entry.size, restore_from=entry.spill_path)

    def restored(self, object_id: ObjectID) -> list[Action]:
        """The spill file was read back: the object is readable again. Its spill file stays,
        so this copy can later be dropped without writing it again."""
        entry = self._expect(object_id, "mark restored")
        if not entry.restoring:
            raise StoreRequestError(f"object {object_id.hex()} was not being restored")
        return self._become_sealed(entry)

    # -- queries ---------------------------------------------------------------------------
    def __contains__(self, object_id: ObjectID) -> bool:
        return object_id in self._objects

    def __len__(self) -> int:
        return len(self._objects)

    def info(self, object_id: ObjectID) -> ObjectInfo | None:
        entry = self._objects.get(object_id)
        if entry is None:
            return None
        return ObjectInfo(
            entry.object_id,
            entry.size,
            entry.owner,
            entry.state,
            entry.primary,
            entry.offset,
            sum(entry.pins.values()),
            entry.last_access,
            entry.spill_path,
            entry.spilling,
            entry.freed,
        )

    def infos(self) -> list[ObjectInfo]:
        """Every object the table knows, in memory or spilled (for memory reports)."""
        return [info for info in map(self.info, list(self._objects)) if info is not None]

    def holders(self, limit: int = 5) -> list[Holder]:
        """The biggest objects in memory, largest first."""
        now = self.clock.monotonic()
        in_memory = (e for e in self._objects.values() if e.offset is not None)
        return [
            Holder(e.object_id, e.size, e.owner, e.state.value, e.primary, bool(e.pins), now - e.last_access)
            for e in heapq.nlargest(limit, in_memory, key=lambda e: e.size)
        ]

    def stats(self, top: int = 5) -> StoreStats:
        alloc = self.allocator.stats()
        by_owner: dict[WorkerID, list[int]] = {}
        counts = dict.fromkeys(("created", "pinned", "primary", "spilling", "spilled"), 0)
        spilled_bytes = 0
        for e in self._objects.values():
            counts["created"] += e.state is ObjectState.CREATED
            counts["pinned"] += bool(e.pins)
            counts["primary"] += e.primary
            counts["spilling"] += e.spilling
            counts["spilled"] += e.state is ObjectState.SPILLED
            if e.spill_path is not None:
                spilled_bytes += e.size
            if e.offset is not None:
                usage = by_owner.setdefault(e.owner, [0, 0])
                usage[0] += 1
                usage[1] += e.size
        owners = heapq.nlargest(top, by_owner.items(), key=lambda item: item[1][1])
        return StoreStats(
            capacity=alloc.capacity,
            used_bytes=alloc.used_bytes,
            free_bytes=alloc.free_bytes,
            largest_free=alloc.largest_free,
            fragmentation=alloc.fragmentation,
            num_objects=len(self._objects),
            num_being_written=counts["created"],
            num_pinned=counts["pinned"],
            num_primary=counts["primary"],
            num_spilling=counts["spilling"],
            num_spilled=counts["spilled"],
            spilled_bytes=spilled_bytes,
            droppable_bytes=sum(self._objects[i].size for i in self._droppable),
            spillable_bytes=sum(self._objects[i].size for i in self._spillable),
            biggest=tuple(self.holders(top)),
            top_owners=tuple(OwnerUsage(owner, n, size) for owner, (n, size) in owners),
        )

    def full_message(self, object_id: ObjectID, size: int) -> str:
        """Why ``object_id`` cannot be stored, naming the biggest holders: the text of the
        ``ObjectStoreFullError`` the daemon raises when it stops waiting for room."""
        return self.stats().describe_full(object_id, size)

    def validate(self) -> None:
        """Check the table's invariants against the allocator; raises InternalError."""
        self.allocator.validate()
        offsets = {e.offset: e for e in self._objects.values() if e.offset is not None}
        live = {offset for offset, _, is_free in self.allocator.blocks() if not is_free}
        if set(offsets) != live:
            raise InternalError("object store: objects in memory disagree with the allocator")
        for e in self._objects.values():
            in_lists = (e.object_id in self._droppable) + (e.object_id in self._spillable)
            expected = self._candidate_list(e)
            if in_lists != (expected is not None) or (expected is not None and e.object_id not in expected):
                raise InternalError(f"object store: eviction lists wrong for {self._describe(e)}")
            if e.spilling != (e.object_id in self._spilling):
                raise InternalError(f"object store: spill set wrong for {self._describe(e)}")
            if (e.offset is None) != (e.state is ObjectState.SPILLED):
                raise InternalError(f"object store: offset wrong for {self._describe(e)}")

    # -- internals -----------------------------------------------------------------------------
    def _allocate(self, object_id: ObjectID, size: int) -> int | NeedsSpace | TooLarge:
        needed = aligned(size, self.allocator.alignment)
        if needed > self.capacity:
            return TooLarge(object_id, size, self.capacity)
        offset = self.allocator.allocate(size)
        if offset is None:
            return NeedsSpace(
                object_id, size, needed, self.allocator.free_bytes, self.allocator.largest_free()
            )
        return offset

    def _expect(self, object_id: ObjectID, verb: str) -> _Entry:
        entry = self._objects.get(object_id)
        if entry is None:
            raise StoreRequestError(f"cannot {verb} object {object_id.hex()}: it is not in this store")
        return entry

    def _describe(self, entry: _Entry) -> str:
        flags = [entry.state.value, "primary" if entry.primary else "secondary"]
        flags += ["restoring"] * entry.restoring + ["spilling"] * entry.spilling + ["freed"] * entry.freed
        return f"{entry.object_id.hex()} ({', '.join(flags)})"

    def _become_sealed(self, entry: _Entry) -> list[Action]:
        assert entry.offset is not None
        entry.state = ObjectState.SEALED
        self._touch(entry)
        if entry.freed:
            return self._reap(entry)
        return [Sealed(entry.object_id, entry.offset, entry.size)]

    def _abort(self, entry: _Entry) -> list[Action]:
        restoring = entry.restoring
        self._stop_writing(entry)
        self._free_memory(entry)
        if restoring:
            entry.state = ObjectState.SPILLED
            return self._reap(entry)
        del self._objects[entry.object_id]
        return [Aborted(entry.object_id)]

    def _stop_writing(self, entry: _Entry) -> None:
        if entry.writer is not None:
            writing = self._writing_by[entry.writer]
            writing.discard(entry.object_id)
            if not writing:
                del self._writing_by[entry.writer]
            entry.writer = None

    def _drop_from_memory(self, entry: _Entry) -> Evicted:
        """Free a droppable copy's memory: it is gone, or only on disk now."""
        self._free_memory(entry)
        if entry.spill_path is None:
            del self._objects[entry.object_id]
        else:
            entry.state = ObjectState.SPILLED
        return Evicted(entry.object_id, entry.size, entry.spill_path)

    def _free_memory(self, entry: _Entry) -> None:
        if entry.offset is None:
            return
        try:
            self.allocator.free(entry.offset)
        except ValueError as err:
            raise InternalError(f"object store: {self._describe(entry)}: {err}") from None
        entry.offset = None
        self._droppable.pop(entry.object_id, None)
        self._spillable.pop(entry.object_id, None)

    def _reap(self, entry: _Entry) -> list[Action]:
        """Remove a freed object once nothing holds it: no pins, writer, restore or spill."""
        if not entry.freed or entry.pins or entry.spilling or entry.state is ObjectState.CREATED:
            return []
        self._free_memory(entry)
        del self._objects[entry.object_id]
        return [DeleteSpillFile(entry.object_id, entry.spill_path)] if entry.spill_path else []

    def _touch(self, entry: _Entry) -> None:
        entry.last_access = self.clock.monotonic()
        self._classify(entry)

    def _candidate_list(self, entry: _Entry) -> OrderedDict[ObjectID, None] | None:
        if entry.state is not ObjectState.SEALED or entry.pins or entry.spilling or entry.freed:
            return None
        return self._droppable if entry.droppable else self._spillable

    def _classify(self, entry: _Entry) -> None:
        """Put the entry at the most-recent end of the eviction list it belongs to, if any."""
        self._droppable.pop(entry.object_id, None)
        self._spillable.pop(entry.object_id, None)
        candidates = self._candidate_list(entry)
        if candidates is not None:
            candidates[entry.object_id] = None

    def _forget_pin(self, client: Hashable, object_id: ObjectID) -> None:
        pinned = self._pinned_by.get(client)
        if pinned is not None:
            pinned.discard(object_id)
            if not pinned:
                del self._pinned_by[client]
