"""Who still needs an object: the counts behind freeing (ARCHITECTURE.md section 2).

For every object this process knows it counts
- local refs: live ``ObjectRef``s here;
- submitted: pending tasks of this process that take it as an argument (top level or
  nested) and actors it created that may need it again for a restart;
- contained: values this process owns (its puts, results it received) with a ref to it
  inside; freeing such a value releases what it contains;
- out of band: refs pickled outside Manta's serializer and not loaded yet (each load
  releases one);
- pinned: refs captured by remote functions, which any number of workers may load at
  any time, so the object stays for as long as this process lives;
and for objects it *owns*, also
- borrowers: other processes that registered holding a ref to it, each with a count of
  its registrations (its own, and those a worker made for it when returning the ref), so
  a late "done" for old registrations cannot cancel a newer one.
An owned object is freed when all of these are zero.

For an object it *borrows* (owned elsewhere), the process registers with the owner the
first time it loads a ref to it (the caller does that, synchronously, while the value
that carried the ref is still held), and when all counts reach zero ``collect`` reports
it so the caller can tell the owner it no longer borrows.

Drops come from ``ObjectRef.__del__``, which may run on any thread and in the middle of
anything, so they are only queued there and applied by ``collect()``.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from manta._private.common.ids import NodeID, ObjectID, WorkerID
from manta._private.rpc.messages import Address

# A ref as the counter needs it: the object and its owner (None when unknown).
RefKey = tuple[ObjectID, Address | None]


@dataclass(slots=True)
class _Entry:
    owned: bool
    local: int = 0
    submitted: int = 0
    contained: int = 0
    out_of_band: int = 0
    pinned: bool = False
    # Owned objects: who borrows it, on which node each borrower runs, and how many
    # registrations it holds.
    borrowers: dict[WorkerID, tuple[NodeID, int]] = field(default_factory=dict)
    # An owned value with refs inside: the objects it holds (released when it is freed).
    inner: list[ObjectID] | None = None
    # Borrowed objects: the owner, and how many registrations it holds for this process.
    owner: Address | None = None
    registrations: int = 0

    def needed(self) -> bool:
        return bool(
            self.local
            or self.submitted
            or self.contained
            or self.out_of_band
            or self.pinned
            or self.borrowers
        )


@dataclass(frozen=True, slots=True)
class Freed:
    object_id: ObjectID
    owned: bool
    # A borrowed object this process had registered for: the owner to tell it is done,
    # and how many registrations that retires.
    owner: Address | None = None
    registrations: int = 0


class ReferenceCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[ObjectID, _Entry] = {}
        self._drops: deque[ObjectID] = deque()
        # Objects whose counts may have reached zero, checked by the next collect().
        self._candidates: set[ObjectID] = set()

    def _entry(self, object_id: ObjectID, owner: Address | None) -> _Entry:
        entry = self._entries.get(object_id)
        if entry is None:
            entry = self._entries[object_id] = _Entry(owned=False, owner=owner)
        elif entry.owner is None and not entry.owned:
            entry.owner = owner
        return entry

    # -- counting, from any thread -------------------------------------------------------------
    def add_owned(self, object_id: ObjectID) -> None:
        with self._lock:
            entry = self._entries.get(object_id)
            if entry is None:
                self._entries[object_id] = _Entry(owned=True)
            else:
                entry.owned = True

    def add_local(self, object_id: ObjectID, owner: Address | None) -> None:
        with self._lock:
            self._entry(object_id, owner).local += 1

    def drop_local(self, object_id: ObjectID) -> None:
        self._drops.append(object_id)  # deque.append is atomic; see the module docstring

    def add_submitted(self, refs: Sequence[RefKey]) -> None:
        with self._lock:
            for object_id, owner in refs:
                self._entry(object_id, owner).submitted += 1

    def remove_submitted(self, object_ids: Sequence[ObjectID]) -> None:
        with self._lock:
            for object_id in object_ids:
                entry = self._entries.get(object_id)
                if entry is not None:
                    entry.submitted = max(entry.submitted - 1, 0)
                    self._candidates.add(object_id)

    def add_contained(self, container: ObjectID, refs: Sequence[RefKey]) -> None:
        """``container``, an owned value, holds ``refs`` until it is freed."""
        with self._lock:
            self._hold_inner(container, refs)

    def add_returned(self, container: ObjectID | None, refs: Sequence[RefKey], me: WorkerID) -> None:
        """A task result with ``refs`` inside arrived. The worker that ran the task has
        registered this process as a borrower of each with its owner (this process too);
        the result (``container``) now holds them instead, or, when nobody wants the result
        (or it is None: a failed attempt to be retried), nothing does."""
        with self._lock:
            for object_id, owner in refs:
                entry = self._entry(object_id, owner)
                if entry.owned:
                    self._unborrow(object_id, entry, me, 1)
                else:
                    entry.registrations += 1
                self._candidates.add(object_id)
            if container is not None:
                self._hold_inner(container, refs)

    def _hold_inner(self, container: ObjectID, refs: Sequence[RefKey]) -> None:
        holder = self._entries.get(container)
        if holder is None or not holder.owned:
            return
        inner = holder.inner if holder.inner is not None else []
        for object_id, owner in refs:
            self._entry(object_id, owner).contained += 1
            inner.append(object_id)
        holder.inner = inner

    def pin(self, object_id: ObjectID, owner: Address | None) -> None:
        """Keep the object while this process lives."""
        with self._lock:
            self._entry(object_id, owner).pinned = True

    def add_out_of_band(self, object_id: ObjectID, owner: Address | None) -> None:
        """A ref was pickled outside Manta: hold the object until the pickle is loaded."""
        with self._lock:
            self._entry(object_id, owner).out_of_band += 1

    def consume_out_of_band(self, object_ids: list[ObjectID]) -> None:
        """Out-of-band pickles of these refs were loaded (their loaders hold them now)."""
        with self._lock:
            for object_id in object_ids:
                entry = self._entries.get(object_id)
                if entry is not None and entry.out_of_band:
                    entry.out_of_band -= 1
                    self._candidates.add(object_id)

    # -- borrowers (owned objects) -------------------------------------------------------------
    def add_borrower(self, object_id: ObjectID, borrower: WorkerID, node_id: NodeID) -> bool:
        """Another process holds a ref; False if this process does not own the object
        (any more)."""
        with self._lock:
            entry = self._entries.get(object_id)
            if entry is None or not entry.owned:
                return False
            _node, count = entry.borrowers.get(borrower, (node_id, 0))
            entry.borrowers[borrower] = (node_id, count + 1)
            return True

    def remove_borrower(self, object_id: ObjectID, borrower: WorkerID, registrations: int = 1) -> None:
        """``borrower`` retires ``registrations`` of its registrations for the object."""
        with self._lock:
            entry = self._entries.get(object_id)
            if entry is not None:
                self._unborrow(object_id, entry, borrower, registrations)

    def _unborrow(self, object_id: ObjectID, entry: _Entry, borrower: WorkerID, registrations: int) -> None:
        held = entry.borrowers.get(borrower)
        if held is None:
            return
        if held[1] > registrations:
            entry.borrowers[borrower] = (held[0], held[1] - registrations)
        else:
            del entry.borrowers[borrower]
            self._candidates.add(object_id)

    def borrowers_gone(self, *, worker_id: WorkerID | None = None, node_id: NodeID | None = None) -> None:
        """A process (or every process of a node) died: it borrows nothing any more."""
        with self._lock:
            for object_id, entry in self._entries.items():
                gone = [w for w, (n, _count) in entry.borrowers.items() if w == worker_id or n == node_id]
                for w in gone:
                    del entry.borrowers[w]
                if gone:
                    self._candidates.add(object_id)

    def has_borrowers(self) -> bool:
        with self._lock:
            return any(e.borrowers for e in self._entries.values())

    # -- registration (borrowed objects) -------------------------------------------------------
    def needs_registration(self, object_id: ObjectID) -> Address | None:
        """The owner to register with, if this process borrows the object and has not yet."""
        with self._lock:
            entry = self._entries.get(object_id)
            if entry is None or entry.owned or entry.registrations:
                return None
            return entry.owner

    def mark_registered(self, object_ids: list[ObjectID]) -> None:
        with self._lock:
            for object_id in object_ids:
                entry = self._entries.get(object_id)
                if entry is not None:
                    entry.registrations += 1

    # -- freeing --------------------------------------------------------------------------------
    def collect(self) -> list[Freed]:
        """Apply queued drops; return the objects nobody here needs any more (values
        freed release what they contain, in the same call)."""
        freed: list[Freed] = []
        if not self._drops and not self._candidates:
            return freed
        with self._lock:
            while self._drops:
                object_id = self._drops.popleft()
                entry = self._entries.get(object_id)
                if entry is not None:
                    entry.local = max(entry.local - 1, 0)
                    self._candidates.add(object_id)
            while self._candidates:
                candidates, self._candidates = self._candidates, set()
                for object_id in candidates:
                    entry = self._entries.get(object_id)
                    if entry is None or entry.needed():
                        continue
                    del self._entries[object_id]
                    if entry.registrations:
                        freed.append(Freed(object_id, False, entry.owner, entry.registrations))
                    else:
                        freed.append(Freed(object_id, entry.owned))
                    for inner_id in entry.inner or ():
                        inner = self._entries.get(inner_id)
                        if inner is not None:
                            inner.contained = max(inner.contained - 1, 0)
                            self._candidates.add(inner_id)
        return freed

    # -- queries --------------------------------------------------------------------------------
    def knows(self, object_id: ObjectID) -> bool:
        """Whether anything here still holds the object (owned or borrowed)."""
        return object_id in self._entries

    def is_owned(self, object_id: ObjectID) -> bool:
        entry = self._entries.get(object_id)
        return entry is not None and entry.owned

    def owner_of(self, object_id: ObjectID) -> Address | None:
        entry = self._entries.get(object_id)
        return None if entry is None else entry.owner

    def local_count(self, object_id: ObjectID) -> int:
        with self._lock:
            pending = sum(1 for d in self._drops if d == object_id)
            entry = self._entries.get(object_id)
            return (entry.local if entry is not None else 0) - pending

    def num_owned(self) -> int:
        """Owned objects still needed (by anyone)."""
        with self._lock:
            return sum(1 for e in self._entries.values() if e.owned)

    def snapshot(self) -> list[tuple[ObjectID, bool, int, int, int, int, int]]:
        """(id, owned, local refs, submitted, contained, borrowers, out-of-band holds and
        pins) for every object known here, with queued drops applied to the local counts."""
        with self._lock:
            dropped: dict[ObjectID, int] = {}
            for object_id in self._drops:
                dropped[object_id] = dropped.get(object_id, 0) + 1
            return [
                (
                    object_id,
                    e.owned,
                    e.local - dropped.get(object_id, 0),
                    e.submitted,
                    e.contained,
                    len(e.borrowers),
                    e.out_of_band + e.pinned,
                )
                for object_id, e in self._entries.items()
            ]
