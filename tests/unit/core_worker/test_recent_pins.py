"""The cache of recently read store objects: kept for a moment after last use, a bounded
number of them, forgotten at once when freed; dropping one lets its unpin run."""

from __future__ import annotations

import gc
import weakref

import pytest

from manta._private.common.ids import ObjectID
from manta._private.core_worker.recent_pins import RecentPins


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class _Mapping:
    """Stands for a PinnedMapping: its finalizer is the unpin."""


def _oid(i: int) -> ObjectID:
    return ObjectID(i.to_bytes(28, "big"))


def _watched(unpinned: list[int], i: int) -> _Mapping:
    mapping = _Mapping()
    weakref.finalize(mapping, unpinned.append, i)
    return mapping


def test_kept_until_unused_for_keep_s_and_each_use_extends_it() -> None:
    clock, unpinned = _Clock(), []
    pins = RecentPins(keep_s=1.0, max_entries=8, max_bytes=1000, clock=clock)
    assert pins.add(_oid(1), _watched(unpinned, 1), 10) is True  # arm an expiry
    assert pins.add(_oid(2), _watched(unpinned, 2), 10) is False
    clock.now += 0.6
    assert pins.get(_oid(1)) is not None
    assert pins.expire() == pytest.approx(0.4)  # object 2 is due first
    clock.now += 0.5
    assert pins.expire() == pytest.approx(0.5)  # 2 went; 1 was used 0.5 s ago
    gc.collect()
    assert unpinned == [2]
    clock.now += 0.5
    assert pins.expire() is None
    gc.collect()
    assert unpinned == [2, 1]
    assert pins.get(_oid(1)) is None


def test_a_mapping_still_in_use_is_not_unpinned_when_the_cache_lets_go() -> None:
    clock, unpinned = _Clock(), []
    pins = RecentPins(keep_s=1.0, max_entries=8, max_bytes=1000, clock=clock)
    value = _watched(unpinned, 1)  # an array made from the mapping keeps it alive
    pins.add(_oid(1), value, 10)
    clock.now += 2
    assert pins.expire() is None
    gc.collect()
    assert unpinned == []
    del value
    gc.collect()
    assert unpinned == [1]


def test_at_most_max_entries_least_recently_used_go_first() -> None:
    clock, unpinned = _Clock(), []
    pins = RecentPins(keep_s=10.0, max_entries=2, max_bytes=1000, clock=clock)
    pins.add(_oid(1), _watched(unpinned, 1), 10)
    pins.add(_oid(2), _watched(unpinned, 2), 10)
    pins.get(_oid(1))
    pins.add(_oid(3), _watched(unpinned, 3), 10)
    gc.collect()
    assert unpinned == [2]
    assert len(pins) == 2 and pins.get(_oid(1)) is not None and pins.get(_oid(3)) is not None


def test_freed_objects_are_forgotten_at_once_and_clear_forgets_all() -> None:
    clock, unpinned = _Clock(), []
    pins = RecentPins(keep_s=10.0, max_entries=8, max_bytes=1000, clock=clock)
    for i in (1, 2, 3):
        pins.add(_oid(i), _watched(unpinned, i), 10)
    pins.drop([_oid(2), _oid(9)])
    gc.collect()
    assert unpinned == [2]
    pins.clear()
    gc.collect()
    assert sorted(unpinned) == [1, 2, 3] and len(pins) == 0


def test_bounded_in_bytes_and_an_object_over_the_budget_is_not_kept() -> None:
    clock, unpinned = _Clock(), []
    pins = RecentPins(keep_s=10.0, max_entries=8, max_bytes=100, clock=clock)
    assert pins.add(_oid(1), _watched(unpinned, 1), 101) is False
    gc.collect()
    assert unpinned == [1] and len(pins) == 0
    pins.add(_oid(2), _watched(unpinned, 2), 60)
    pins.add(_oid(3), _watched(unpinned, 3), 30)
    pins.add(_oid(4), _watched(unpinned, 4), 30)  # 120 bytes: the oldest goes
    gc.collect()
    assert unpinned == [1, 2] and len(pins) == 2
    pins.drop([_oid(3)])
    pins.add(_oid(5), _watched(unpinned, 5), 70)  # 100 bytes: fits exactly
    gc.collect()
    assert unpinned == [1, 2, 3] and len(pins) == 2


def test_one_expiry_at_a_time_however_often_the_cache_empties() -> None:
    clock, unpinned = _Clock(), []
    pins = RecentPins(keep_s=1.0, max_entries=8, max_bytes=1000, clock=clock)
    assert pins.add(_oid(1), _watched(unpinned, 1), 10) is True
    pins.drop([_oid(1)])  # emptied, but the armed expiry is still on its way
    assert pins.add(_oid(2), _watched(unpinned, 2), 10) is False
    clock.now += 2
    assert pins.expire() is None  # that expiry finds nothing left: the next add arms anew
    assert pins.add(_oid(3), _watched(unpinned, 3), 10) is True
