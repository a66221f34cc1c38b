"""What the object store's events return: results for the caller, actions for the I/O shell.

Results answer the request (``create`` gives ``Created`` or says why not); actions are
what the node daemon must carry out or announce (write a spill file, wake the waiters of
a sealed object, tell an owner that a copy is gone). All are frozen dataclasses.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from manta._private.common.ids import ObjectID, WorkerID
from manta._private.object_store.stats import format_bytes


class StoreRequestError(ValueError):
    """A client asked for something its object's state does not allow."""


class ObjectState(enum.Enum):
    CREATED = "created"  # space allocated; a writer (or a restore) is filling it
    SEALED = "sealed"  # immutable and readable in the arena
    SPILLED = "spilled"  # only in its spill file


class ObjectStatus(enum.Enum):
    """Why an object could not be pinned or restored right now."""

    MISSING = "missing"  # not on this node: pull it, or it was never here
    UNSEALED = "unsealed"  # still being written: wait for its Sealed action
    SPILLED = "spilled"  # on disk only: call restore()
    RESTORING = "restoring"  # a restore is in flight: wait for its Sealed action
    FREED = "freed"  # its owner freed it
    IN_MEMORY = "in_memory"  # (restore only) nothing to restore: pin it


# -- results of create / restore / pin -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Created:
    """Space for the object is ``[offset, offset + size)`` of the arena; write it, then
    seal (or, for a restore, read ``restore_from`` into it, then call ``restored``)."""

    object_id: ObjectID
    offset: int
    size: int
    restore_from: str | None = None


@dataclass(frozen=True, slots=True)
class NeedsSpace:
    """No free block of ``needed`` bytes; call ``evict_for(size)`` and try again."""

    object_id: ObjectID
    size: int
    needed: int
    free_bytes: int
    largest_free: int

    @property
    def bytes_short(self) -> int:
        """How much larger the largest free block must grow (free space may be fragmented)."""
        return self.needed - self.largest_free


@dataclass(frozen=True, slots=True)
class TooLarge:
    """The object can never fit: it is larger than the whole store."""

    object_id: ObjectID
    size: int
    capacity: int

    @property
    def message(self) -> str:
        return (
            f"object {self.object_id.hex()} needs {format_bytes(self.size)} ({self.size} bytes), "
            f"more than the whole object store ({format_bytes(self.capacity)}, "
            f"{self.capacity} bytes); start the node with a larger object_store_memory"
        )


@dataclass(frozen=True, slots=True)
class AlreadyExists:
    object_id: ObjectID
    state: ObjectState


@dataclass(frozen=True, slots=True)
class Pinned:
    object_id: ObjectID
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class Unavailable:
    object_id: ObjectID
    status: ObjectStatus


CreateResult = Created | NeedsSpace | TooLarge | AlreadyExists
RestoreResult = Created | NeedsSpace | Unavailable
PinResult = Pinned | Unavailable


# -- actions for the I/O shell ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sealed:
    """The object became readable (sealed, or restored): wake whoever waits for it."""

    object_id: ObjectID
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class Evicted:
    """The in-memory copy was dropped (its space is already free). With ``spill_path``
    set the object is still on this node, on disk; otherwise the node no longer has it
    and its owner's location table should say so."""

    object_id: ObjectID
    size: int
    spill_path: str | None


@dataclass(frozen=True, slots=True)
class Spill:
    """Write ``[offset, offset + size)`` of the arena to a spill file, then call
    ``spilled(object_id, path)``, or ``spill_failed(object_id)`` if that failed."""

    object_id: ObjectID
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class DeleteSpillFile:
    object_id: ObjectID
    path: str


@dataclass(frozen=True, slots=True)
class Aborted:
    """An unsealed object was dropped (its writer gave up or disconnected): whoever waits
    for it must learn that it will not come."""

    object_id: ObjectID


Action = Sealed | Evicted | Spill | DeleteSpillFile | Aborted


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    object_id: ObjectID
    size: int
    owner: WorkerID
    state: ObjectState
    primary: bool
    offset: int | None
    pins: int
    last_access: float
    spill_path: str | None
    spilling: bool
    freed: bool
