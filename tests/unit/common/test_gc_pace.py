import gc
from collections.abc import Iterator

import pytest

from manta._private.common import gc_pace


@pytest.fixture
def thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


def test_relaxed_raises_only_the_first_threshold() -> None:
    assert gc_pace.relaxed((700, 10, 10), 7000) == (7000, 10, 10)
    assert gc_pace.relaxed((700, 5, 20), 7000) == (7000, 5, 20)


def test_relaxed_leaves_a_higher_threshold_an_off_collector_and_a_zero_setting() -> None:
    assert gc_pace.relaxed((50_000, 10, 10), 7000) is None
    assert gc_pace.relaxed((7000, 10, 10), 7000) is None
    assert gc_pace.relaxed((0, 10, 10), 7000) is None  # the program turned collection off
    assert gc_pace.relaxed((700, 10, 10), 0) is None  # Config.gc_threshold = 0: leave Python's


def test_relax_then_restore_puts_back_what_it_found(thresholds: None) -> None:
    gc.set_threshold(700, 10, 10)
    token = gc_pace.relax(7000)
    assert gc.get_threshold() == (7000, 10, 10)
    gc_pace.restore(token)
    assert gc.get_threshold() == (700, 10, 10)


def test_restore_keeps_what_the_program_set_meanwhile(thresholds: None) -> None:
    gc.set_threshold(700, 10, 10)
    token = gc_pace.relax(7000)
    gc.set_threshold(123, 4, 5)
    gc_pace.restore(token)
    assert gc.get_threshold() == (123, 4, 5)


def test_relax_that_changed_nothing_restores_nothing(thresholds: None) -> None:
    gc.set_threshold(20_000, 10, 10)
    token = gc_pace.relax(7000)
    assert token is None and gc.get_threshold() == (20_000, 10, 10)
    gc_pace.restore(token)
    assert gc.get_threshold() == (20_000, 10, 10)
