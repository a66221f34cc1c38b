"""What the object store reports: frozen snapshots for metrics, the dashboard and errors."""

from __future__ import annotations

from dataclasses import dataclass

from manta._private.common.ids import ObjectID, WorkerID


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class Holder:
    """One object occupying memory."""

    object_id: ObjectID
    size: int
    owner: WorkerID
    state: str  # "created" (being written) or "sealed"
    primary: bool
    pinned: bool
    idle_s: float  # since it was last sealed, pinned or unpinned

    def describe(self) -> str:
        what = ["primary" if self.primary else "secondary copy"]
        what += ["pinned by a reader"] * self.pinned + ["still being written"] * (self.state == "created")
        return (
            f"{self.object_id.hex()}: {format_bytes(self.size)}, owned by worker "
            f"{self.owner.hex()[:12]}, {', '.join(what)}, idle {self.idle_s:.0f} s"
        )


@dataclass(frozen=True, slots=True)
class OwnerUsage:
    owner: WorkerID
    objects: int
    bytes: int


@dataclass(frozen=True, slots=True)
class StoreStats:
    capacity: int
    used_bytes: int  # allocated, including alignment padding
    free_bytes: int
    largest_free: int
    fragmentation: float  # 1 - largest_free / free_bytes
    num_objects: int  # every object the table knows, in memory or spilled
    num_being_written: int
    num_pinned: int
    num_primary: int
    num_spilling: int
    num_spilled: int  # on disk only
    spilled_bytes: int  # in spill files (including restored objects whose file stays)
    droppable_bytes: int  # could be dropped now without writing anything
    spillable_bytes: int  # could be spilled now
    biggest: tuple[Holder, ...]
    top_owners: tuple[OwnerUsage, ...]

    def describe_full(self, object_id: ObjectID, size: int) -> str:
        lines = [
            f"cannot store object {object_id.hex()} of {format_bytes(size)}: the object store "
            f"holds {format_bytes(self.used_bytes)} of {format_bytes(self.capacity)}, its largest "
            f"free block is {format_bytes(self.largest_free)}, and nothing more can be evicted "
            f"or spilled ({self.num_pinned} objects pinned by readers, {self.num_being_written} "
            f"being written; {format_bytes(self.spilled_bytes)} already spilled to disk).",
        ]
        if self.biggest:
            lines.append("The biggest objects in memory:")
            lines += [f"  {holder.describe()}" for holder in self.biggest]
        if self.top_owners:
            lines.append("Memory by owner:")
            lines += [
                f"  worker {u.owner.hex()[:12]}: {format_bytes(u.bytes)} in {u.objects} objects"
                for u in self.top_owners
            ]
        lines.append(
            "Release references to objects you no longer need (del the ObjectRefs or the "
            "arrays read from them), or start the node with a larger object_store_memory."
        )
        return "\n".join(lines)
