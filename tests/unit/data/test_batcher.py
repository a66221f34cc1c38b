"""Cutting block streams into batches: sizes, drop_last and the local shuffle buffer."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manta.data._internal.batcher import batch_tables


def _blocks(sizes: list[int]) -> list[pa.Table]:
    out, start = [], 0
    for size in sizes:
        out.append(pa.table({"id": np.arange(start, start + size)}))
        start += size
    return out


@settings(max_examples=100, deadline=None)
@given(sizes=st.lists(st.integers(0, 40), max_size=8), batch=st.integers(1, 30), drop_last=st.booleans())
def test_batches_have_the_size_asked_and_keep_every_row_in_order(sizes, batch, drop_last):
    got = list(batch_tables(_blocks(sizes), batch, drop_last))
    total = sum(sizes)
    full, rest = divmod(total, batch)
    assert [t.num_rows for t in got] == [batch] * full + ([rest] if rest and not drop_last else [])
    ids = [i for t in got for i in t.column("id").to_pylist()]
    assert ids == list(range(len(ids)))


@settings(max_examples=50, deadline=None)
@given(sizes=st.lists(st.integers(1, 50), min_size=1, max_size=6), batch=st.integers(1, 20),
       buffer=st.integers(1, 60), seed=st.integers(0, 10))  # fmt: skip
def test_a_shuffle_buffer_loses_and_repeats_no_row(sizes, batch, buffer, seed):
    got = list(batch_tables(_blocks(sizes), batch, False, buffer, np.random.default_rng(seed)))
    ids = sorted(i for t in got for i in t.column("id").to_pylist())
    assert ids == list(range(sum(sizes)))
    assert all(t.num_rows <= batch for t in got)


def test_a_shuffle_buffer_mixes_rows_and_a_seed_repeats_the_order():
    def order(seed: int) -> list[int]:
        tables = batch_tables(_blocks([100] * 5), 10, False, 200, np.random.default_rng(seed))
        return [i for t in tables for i in t.column("id").to_pylist()]

    assert order(3) == order(3)
    assert order(3) != list(range(500))


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="batch_size"):
        list(batch_tables(_blocks([3]), 0))
    with pytest.raises(ValueError, match="needs a batch_size"):
        list(batch_tables(_blocks([3]), None, False, 10))
