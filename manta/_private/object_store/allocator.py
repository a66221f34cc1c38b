"""Best-fit allocation of one arena's byte range, with neighbours coalesced on free.

Pure bookkeeping: offsets and sizes, no memory is touched. Every block is a multiple of
``alignment`` (64 bytes: a cache line, and what numpy and Arrow want of a buffer), so every
offset handed out is aligned too. Free blocks are indexed twice:

- by offset and by end (two dicts), so ``free`` finds both neighbours in O(1);
- by (size, offset) in one sorted list, so ``allocate`` finds the smallest block that fits
  with one bisect. Ties go to the lowest offset, which keeps the arena's used part packed
  towards offset 0 (fewer pages touched, and a high-water mark the node daemon can
  pre-fault ahead of).

Inserting into or deleting from the sorted list moves pointers with one memmove: O(n)
in principle, but a few microseconds at 100,000 free blocks, far below the cost of the
Python around it; sortedcontainers is not a dependency we carry.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from dataclasses import dataclass

from manta.exceptions import InternalError

ALIGNMENT = 64


def aligned(size: int, alignment: int = ALIGNMENT) -> int:
    """``size`` rounded up to a multiple of ``alignment`` (at least one unit)."""
    return max((size + alignment - 1) // alignment, 1) * alignment


@dataclass(frozen=True, slots=True)
class AllocatorStats:
    capacity: int
    used_bytes: int
    free_bytes: int
    largest_free: int
    live_blocks: int
    free_blocks: int

    @property
    def fragmentation(self) -> float:
        """0 when all free space is one block; near 1 when it is shattered into crumbs."""
        return 1.0 - self.largest_free / self.free_bytes if self.free_bytes else 0.0


class Allocator:
    """Hands out aligned byte ranges of ``[0, capacity)``."""

    def __init__(self, capacity: int, alignment: int = ALIGNMENT) -> None:
        if alignment <= 0 or alignment & (alignment - 1):
            raise ValueError(f"alignment must be a power of two, got {alignment}")
        if capacity < alignment:
            raise ValueError(f"capacity must be at least {alignment} bytes, got {capacity}")
        self.alignment = alignment
        self.capacity = capacity // alignment * alignment
        self._live: dict[int, int] = {}
        self._free_at: dict[int, int] = {}  # offset -> size
        self._free_ending: dict[int, int] = {}  # end -> offset
        self._by_size: list[tuple[int, int]] = []  # sorted (size, offset)
        self._used = 0
        self._high_water = 0
        self._add_free(0, self.capacity)

    # -- the two operations ------------------------------------------------------------
    def allocate(self, size: int) -> int | None:
        """Offset of a new block of at least ``size`` bytes, or None if no free block fits."""
        if size < 0:
            raise ValueError(f"cannot allocate {size} bytes")
        need = aligned(size, self.alignment)
        i = bisect_left(self._by_size, (need, -1))
        if i == len(self._by_size):
            return None
        block_size, offset = self._by_size[i]
        self._remove_free(offset, block_size, index=i)
        if block_size > need:
            self._add_free(offset + need, block_size - need)
        self._live[offset] = need
        self._used += need
        self._high_water = max(self._high_water, offset + need)
        return offset

    def free(self, offset: int) -> int:
        """Return the block at ``offset`` to the free space; returns its size.

        Raises ValueError if no block was allocated there (a double free)."""
        size = self._live.pop(offset, None)
        if size is None:
            raise ValueError(f"no allocated block at offset {offset} (double free?)")
        self._used -= size
        end = offset + size
        after = self._free_at.get(end)
        if after is not None:
            self._remove_free(end, after)
            end += after
        before = self._free_ending.get(offset)
        if before is not None:
            self._remove_free(before, offset - before)
            offset = before
        self._add_free(offset, end - offset)
        return size

    # -- queries -----------------------------------------------------------------------
    @property
    def used_bytes(self) -> int:
        return self._used

    @property
    def free_bytes(self) -> int:
        return self.capacity - self._used

    @property
    def high_water_mark(self) -> int:
        """The highest end of any block ever allocated: bytes beyond it were never used."""
        return self._high_water

    def largest_free(self) -> int:
        return self._by_size[-1][0] if self._by_size else 0

    def fits(self, size: int) -> bool:
        return aligned(size, self.alignment) <= self.largest_free()

    def block_size(self, offset: int) -> int:
        """Size of the live block at ``offset`` (KeyError if there is none)."""
        return self._live[offset]

    def stats(self) -> AllocatorStats:
        return AllocatorStats(
            capacity=self.capacity,
            used_bytes=self._used,
            free_bytes=self.capacity - self._used,
            largest_free=self.largest_free(),
            live_blocks=len(self._live),
            free_blocks=len(self._by_size),
        )

    def blocks(self) -> Iterator[tuple[int, int, bool]]:
        """Every block in address order: (offset, size, is_free). O(n log n); for tests
        and debugging."""
        entries = [(o, s, False) for o, s in self._live.items()]
        entries += [(o, s, True) for o, s in self._free_at.items()]
        return iter(sorted(entries))

    def release_plan(self) -> ReleasePlan:
        """A what-if: how large a free block would freeing some live blocks make?"""
        return ReleasePlan(self)

    def validate(self) -> None:
        """Check every invariant; raises InternalError naming the first that fails."""
        pos = 0
        previous_free = False
        for offset, size, is_free in self.blocks():
            if offset != pos or size <= 0 or size % self.alignment:
                raise InternalError(f"allocator: block ({offset}, {size}) does not tile at {pos}")
            if is_free and previous_free:
                raise InternalError(f"allocator: free block at {offset} was not coalesced")
            previous_free = is_free
            pos = offset + size
        if pos != self.capacity:
            raise InternalError(f"allocator: blocks end at {pos}, capacity is {self.capacity}")
        if self._by_size != sorted((s, o) for o, s in self._free_at.items()):
            raise InternalError("allocator: size index disagrees with the free blocks")
        if self._free_ending != {o + s: o for o, s in self._free_at.items()}:
            raise InternalError("allocator: end index disagrees with the free blocks")
        if self._used != sum(self._live.values()):
            raise InternalError("allocator: used byte count is wrong")

    # -- the free-block indexes ----------------------------------------------------------
    def _add_free(self, offset: int, size: int) -> None:
        self._free_at[offset] = size
        self._free_ending[offset + size] = offset
        insort(self._by_size, (size, offset))

    def _remove_free(self, offset: int, size: int, index: int | None = None) -> None:
        del self._free_at[offset]
        del self._free_ending[offset + size]
        if index is None:
            index = bisect_left(self._by_size, (size, offset))
        del self._by_size[index]


class ReleasePlan:
    """Free blocks on paper, one at a time, tracking the largest contiguous free run.

    Used to choose eviction victims: freeing 1 GiB of scattered small objects does not
    make room for a 1 GiB object, so the store adds victims until the run they form with
    their free neighbours is big enough, then keeps only the victims inside that run
    (``best``). Each ``release`` is O(1): runs are kept maximal, so a new block only ever
    merges with the run or free block touching it on either side.
    """

    def __init__(self, allocator: Allocator) -> None:
        self._alloc = allocator
        self._run_end: dict[int, int] = {}  # start -> end of runs formed so far
        self._run_start: dict[int, int] = {}  # end -> start
        self._released: set[int] = set()
        if allocator._by_size:
            size, offset = allocator._by_size[-1]
            self.best = (offset, offset + size)
        else:
            self.best = (0, 0)

    @property
    def largest(self) -> int:
        """Size of the largest contiguous free run, counting released blocks as free."""
        return self.best[1] - self.best[0]

    def release(self, offset: int) -> int:
        """Pretend the live block at ``offset`` is freed; returns the run it now joins."""
        if offset in self._released:
            raise ValueError(f"block at {offset} was already released in this plan")
        start = offset
        end = offset + self._alloc.block_size(offset)
        self._released.add(offset)
        if start in self._run_start:
            left = self._run_start.pop(start)
            del self._run_end[left]
            start = left
        elif start in self._alloc._free_ending:
            start = self._alloc._free_ending[start]
        if end in self._run_end:
            right = self._run_end.pop(end)
            del self._run_start[right]
            end = right
        elif end in self._alloc._free_at:
            end += self._alloc._free_at[end]
        self._run_end[start] = end
        self._run_start[end] = start
        if end - start > self.largest:
            self.best = (start, end)
        return end - start
