"""Counting who still needs an object, so its owner can free it.

Per object this process knows, the counter holds the number of live ``ObjectRef``s here
and the number of pending tasks that take it as an argument. An owned object is freed
when both reach zero, unless it *escaped*: a ref to it was serialized into a value that
left this process. Escaped objects stay until the job ends; exact borrower tracking
(ARCHITECTURE.md section 2) replaces that rule in the object store issue.

Drops arrive from ``ObjectRef.__del__``, which may run on any thread and in the middle of
anything, so they are only queued there and applied by ``collect()``.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from manta._private.common.ids import ObjectID
from manta._private.rpc.messages import Address


@dataclass(frozen=True, slots=True)
class Freed:
    object_id: ObjectID
    owned: bool


class ReferenceCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local: dict[ObjectID, int] = {}
        self._submitted: dict[ObjectID, int] = {}
        self._owned: set[ObjectID] = set()
        self._escaped: set[ObjectID] = set()
        self._borrowed_owner: dict[ObjectID, Address] = {}
        self._drops: deque[ObjectID] = deque()
        # Objects whose counts may have reached zero, checked by the next collect().
        self._candidates: set[ObjectID] = set()

    # -- from any thread --------------------------------------------------------------
    def add_owned(self, object_id: ObjectID) -> None:
        with self._lock:
            self._owned.add(object_id)

    def add_local(self, object_id: ObjectID, owner: Address | None) -> None:
        with self._lock:
            self._local[object_id] = self._local.get(object_id, 0) + 1

    def drop_local(self, object_id: ObjectID) -> None:
        self._drops.append(object_id)  # deque.append is atomic; see the module docstring

    def note_borrowed(self, object_id: ObjectID, owner: Address) -> None:
        with self._lock:
            if object_id not in self._owned:
                self._borrowed_owner[object_id] = owner

    def mark_escaped(self, object_ids: list[ObjectID]) -> None:
        with self._lock:
            for object_id in object_ids:
                if object_id in self._owned:
                    self._escaped.add(object_id)

    def add_submitted(self, object_ids: list[ObjectID]) -> None:
        with self._lock:
            for object_id in object_ids:
                self._submitted[object_id] = self._submitted.get(object_id, 0) + 1

    def remove_submitted(self, object_ids: list[ObjectID]) -> None:
        with self._lock:
            for object_id in object_ids:
                left = self._submitted.get(object_id, 0) - 1
                if left > 0:
                    self._submitted[object_id] = left
                else:
                    self._submitted.pop(object_id, None)
                    self._candidates.add(object_id)

    def collect(self) -> list[Freed]:
        """Apply queued drops; return the objects nobody here needs any more."""
        freed: list[Freed] = []
        if not self._drops and not self._candidates:
            return freed
        with self._lock:
            while self._drops:
                object_id = self._drops.popleft()
                left = self._local.get(object_id, 0) - 1
                if left > 0:
                    self._local[object_id] = left
                else:
                    self._local.pop(object_id, None)
                    self._candidates.add(object_id)
            candidates, self._candidates = self._candidates, set()
            for object_id in candidates:
                if object_id in self._local or object_id in self._submitted or object_id in self._escaped:
                    continue
                owned = object_id in self._owned
                self._owned.discard(object_id)
                self._borrowed_owner.pop(object_id, None)
                freed.append(Freed(object_id, owned))
        return freed

    # -- queries -------------------------------------------------------------------------
    def is_owned(self, object_id: ObjectID) -> bool:
        return object_id in self._owned

    def owner_of(self, object_id: ObjectID) -> Address | None:
        return self._borrowed_owner.get(object_id)

    def local_count(self, object_id: ObjectID) -> int:
        with self._lock:
            pending = sum(1 for d in self._drops if d == object_id)
            return self._local.get(object_id, 0) - pending

    def snapshot(self) -> list[tuple[ObjectID, bool, int, int, bool]]:
        """(id, owned, local refs, pending tasks using it, escaped) for every object known
        here, with queued drops applied to the counts."""
        with self._lock:
            dropped: dict[ObjectID, int] = {}
            for object_id in self._drops:
                dropped[object_id] = dropped.get(object_id, 0) + 1
            ids = set(self._local) | set(self._submitted) | self._owned
            return [
                (
                    object_id,
                    object_id in self._owned,
                    self._local.get(object_id, 0) - dropped.get(object_id, 0),
                    self._submitted.get(object_id, 0),
                    object_id in self._escaped,
                )
                for object_id in ids
            ]

    def num_owned(self) -> int:
        return len(self._owned)
