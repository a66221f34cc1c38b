"""Pure parts of the operators: the actor pool's size and the stats summaries."""

from __future__ import annotations

from manta.data._internal.operators import pool_size_wanted
from manta.data._internal.stats import ExecStats, OperatorStats


def test_a_pool_starts_at_its_minimum():
    assert pool_size_wanted(0, 0, 0, 0, low=2, high=4) == 2


def test_a_pool_grows_by_one_only_when_work_waits_and_every_slot_is_busy():
    assert pool_size_wanted(2, 0, queued=3, free_slots=0, low=1, high=4) == 3
    assert pool_size_wanted(2, 0, queued=3, free_slots=1, low=1, high=4) == 2
    assert pool_size_wanted(2, 1, queued=3, free_slots=0, low=1, high=4) == 2  # one is starting
    assert pool_size_wanted(4, 0, queued=3, free_slots=0, low=1, high=4) == 4  # at its maximum
    assert pool_size_wanted(2, 0, queued=0, free_slots=0, low=1, high=4) == 2


def test_operator_stats_summarize_without_keeping_every_block():
    stats = OperatorStats("Map(f)", started_at=0.0, finished_at=2.0)
    for rows in (10, 30, 20):
        stats.add_block(rows, rows * 8, ExecStats(0.5, 0.25, 100 << 20))
    text = stats.summary(1)
    assert "Operator 1 Map(f): 0 tasks executed, 3 blocks produced in 2.00s" in text
    assert "Output num rows per block: 10 min, 30 max, 20 mean, 60 total" in text
    assert "Peak heap memory usage (MiB): 100.0 min, 100.0 max" in text
    assert "Throughput: 30 rows/s" in text
