"""The arena allocator: alignment, best fit, coalescing, and its invariants under random use."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from manta._private.object_store.allocator import ALIGNMENT, Allocator, aligned
from manta.exceptions import InternalError

KiB = 1024


def test_offsets_are_aligned_and_sizes_rounded_up() -> None:
    a = Allocator(64 * KiB)
    offsets = [a.allocate(n) for n in (1, 63, 64, 65, 0, 1000)]
    assert offsets == [0, 64, 128, 192, 320, 384]
    assert all(o is not None and o % ALIGNMENT == 0 for o in offsets)
    assert [a.block_size(o) for o in offsets if o is not None] == [64, 64, 64, 128, 64, 1024]
    assert a.used_bytes == 1408 and a.free_bytes == 64 * KiB - 1408
    a.validate()


def test_capacity_is_rounded_down_and_validated() -> None:
    assert Allocator(1000).capacity == 960
    with pytest.raises(ValueError):
        Allocator(10)
    with pytest.raises(ValueError):
        Allocator(4096, alignment=48)
    with pytest.raises(ValueError):
        Allocator(4096).allocate(-1)


def test_full_arena_returns_none_and_a_double_free_is_refused() -> None:
    a = Allocator(4 * KiB)
    whole = a.allocate(4 * KiB)
    assert whole == 0 and a.allocate(1) is None and a.largest_free() == 0
    assert a.free(0) == 4 * KiB
    with pytest.raises(ValueError, match="double free"):
        a.free(0)


def test_best_fit_picks_the_smallest_hole_that_fits() -> None:
    a = Allocator(64 * KiB)
    blocks = [a.allocate(n) for n in (4 * KiB, 64, 1 * KiB, 64, 2 * KiB, 64)]
    assert None not in blocks
    for o in (blocks[0], blocks[2], blocks[4]):  # holes of 4 KiB, 1 KiB, 2 KiB
        assert o is not None
        a.free(o)
    assert a.allocate(1500) == blocks[4]  # the 2 KiB hole, not the 4 KiB one or the tail
    assert a.allocate(900) == blocks[2]
    a.validate()


def test_freeing_coalesces_with_both_neighbours() -> None:
    a = Allocator(16 * KiB)
    x, y, z = (a.allocate(4 * KiB) for _ in range(3))
    assert (x, y, z) == (0, 4 * KiB, 8 * KiB)
    a.free(0)
    a.free(8 * KiB)  # merges with the tail
    assert a.stats().free_blocks == 2
    a.free(4 * KiB)  # merges with both
    assert list(a.blocks()) == [(0, 16 * KiB, True)]
    assert a.largest_free() == 16 * KiB and a.stats().fragmentation == 0.0


def test_fragmentation_and_high_water_mark() -> None:
    a = Allocator(8 * KiB)
    offsets = [a.allocate(KiB) for _ in range(8)]
    assert a.high_water_mark == 8 * KiB
    for o in offsets[::2]:
        assert o is not None
        a.free(o)
    stats = a.stats()
    assert stats.free_bytes == 4 * KiB and stats.largest_free == KiB
    assert stats.fragmentation == pytest.approx(0.75)
    assert a.fits(KiB) and not a.fits(KiB + 1)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("alloc"), st.integers(0, 5000)),
        st.tuples(st.just("free"), st.integers(0, 10_000)),
    ),
    max_size=200,
)


@given(ops)
def test_random_use_keeps_every_invariant(operations: list[tuple[str, int]]) -> None:
    a = Allocator(64 * KiB)
    live: dict[int, int] = {}
    for op, arg in operations:
        if op == "alloc":
            offset = a.allocate(arg)
            if offset is None:
                assert a.largest_free() < aligned(arg)
                continue
            assert offset % ALIGNMENT == 0 and offset not in live
            live[offset] = arg
        elif live:
            offset = sorted(live)[arg % len(live)]
            assert a.free(offset) == aligned(live.pop(offset))
        # No two live allocations overlap, and each lies inside the arena.
        spans = sorted((o, o + aligned(n)) for o, n in live.items())
        assert all(end <= nxt for (_, end), (nxt, _) in itertools.pairwise(spans))
        assert not spans or spans[-1][1] <= a.capacity
        assert a.used_bytes + a.free_bytes == a.capacity
        assert a.used_bytes == sum(aligned(n) for n in live.values())
    a.validate()
    for offset in list(live):
        a.free(offset)
    assert list(a.blocks()) == [(0, a.capacity, True)]


@given(st.lists(st.integers(1, 3000), min_size=1, max_size=60), st.randoms(use_true_random=False))
def test_release_plan_matches_freeing_for_real(sizes: list[int], rng: random.Random) -> None:
    a = Allocator(128 * KiB)
    offsets = [o for o in (a.allocate(n) for n in sizes) if o is not None]
    for o in rng.sample(offsets, len(offsets) // 3):  # some holes to merge with
        a.free(o)
        offsets.remove(o)
    victims = rng.sample(offsets, len(offsets) // 2)
    plan = a.release_plan()
    for o in victims:
        plan.release(o)
    for o in victims:
        a.free(o)
    assert plan.largest == a.largest_free()


def test_release_plan_refuses_a_block_twice() -> None:
    a = Allocator(4 * KiB)
    o = a.allocate(64)
    assert o is not None
    plan = a.release_plan()
    plan.release(o)
    with pytest.raises(ValueError):
        plan.release(o)


def test_thousands_of_blocks_stay_consistent() -> None:
    rng = random.Random(7)
    a = Allocator(256 * 1024 * KiB)
    live: list[int] = []
    for _ in range(20_000):
        if live and rng.random() < 0.45:
            a.free(live.pop(rng.randrange(len(live))))
        else:
            offset = a.allocate(rng.randrange(1, 64 * KiB))
            if offset is not None:
                live.append(offset)
    assert a.stats().live_blocks == len(live) > 1000
    a.validate()
    for offset in live:
        a.free(offset)
    assert a.largest_free() == a.capacity


def test_validate_catches_a_corrupted_index() -> None:
    a = Allocator(4 * KiB)
    a.allocate(64)
    a._used += 64  # simulate a bookkeeping bug
    with pytest.raises(InternalError):
        a.validate()
