"""The node's shared-memory object store: the pure pieces and the arena.

Layering rule: this package sits at the bottom (ARCHITECTURE.md section 10). It imports
only the standard library, ``manta._private.common`` and ``manta.exceptions``; it has no
sockets, threads or asyncio, and reads time only through an injected ``Clock``. The node
daemon (owner of the arena and the table) and core workers (writers and readers) import
it; it imports neither.

    allocator     best-fit byte ranges of one arena, coalescing on free
    object_table  the object table: create/seal/pin/free, eviction and spill decisions
    results       what the store's events return: results and actions
    stats         frozen snapshots of the store, and the text of a store-full error
    arena         the shared-memory file and its writable and read-only mappings
    layout        the bytes of one object: header, pickle stream, aligned buffers
    spill         spill files: arena bytes to disk and back
    buffers       any buffer-protocol object as a flat byte view
"""

from manta._private.object_store.allocator import ALIGNMENT, Allocator, AllocatorStats
from manta._private.object_store.arena import Arena, ArenaSpaceError, choose_path
from manta._private.object_store.layout import layout_size, read_object, write_object
from manta._private.object_store.object_table import ObjectTable
from manta._private.object_store.results import (
    Aborted,
    Action,
    AlreadyExists,
    Created,
    DeleteSpillFile,
    Evicted,
    NeedsSpace,
    ObjectInfo,
    ObjectState,
    ObjectStatus,
    Pinned,
    Sealed,
    Spill,
    StoreRequestError,
    TooLarge,
    Unavailable,
)
from manta._private.object_store.spill import read_spill_file, remove_spill_file, spill_path, write_spill_file
from manta._private.object_store.stats import Holder, OwnerUsage, StoreStats

__all__ = [
    "ALIGNMENT",
    "Aborted",
    "Action",
    "Allocator",
    "AllocatorStats",
    "AlreadyExists",
    "Arena",
    "ArenaSpaceError",
    "Created",
    "DeleteSpillFile",
    "Evicted",
    "Holder",
    "NeedsSpace",
    "ObjectInfo",
    "ObjectState",
    "ObjectStatus",
    "ObjectTable",
    "OwnerUsage",
    "Pinned",
    "Sealed",
    "Spill",
    "StoreRequestError",
    "StoreStats",
    "TooLarge",
    "Unavailable",
    "choose_path",
    "layout_size",
    "read_object",
    "read_spill_file",
    "remove_spill_file",
    "spill_path",
    "write_object",
    "write_spill_file",
]
