from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from manta.data._internal.shuffling import (
    concat_parts,
    rng_for,
    shuffle_rows,
    split_by_index,
    split_evenly,
    split_randomly,
)


@given(st.integers(0, 200), st.integers(1, 7), st.integers(0, 2**32))
def test_split_randomly_keeps_every_row_once_and_a_seed_reproduces_it(rows: int, n: int, seed: int) -> None:
    table = pa.table({"row": list(range(rows))})
    parts = split_randomly(table, n, rng_for(seed, 3))
    assert len(parts) == n
    assert Counter(v for p in parts for v in p.column("row").to_pylist()) == Counter(range(rows))
    again = split_randomly(table, n, rng_for(seed, 3))
    assert [p.column("row").to_pylist() for p in parts] == [p.column("row").to_pylist() for p in again]


def test_split_randomly_is_roughly_uniform() -> None:
    parts = split_randomly(pa.table({"x": list(range(4000))}), 4, rng_for(7))
    assert all(900 < p.num_rows < 1100 for p in parts)


def test_rng_streams_are_independent_and_none_is_fresh() -> None:
    def draw(seed: int | None, *stream: int) -> list[int]:
        return rng_for(seed, *stream).integers(0, 2**62, size=4).tolist()

    assert draw(1, 0) == draw(1, 0)
    assert draw(1, 0) != draw(1, 1) != draw(2, 1)
    assert draw(1) != draw(1, 0)
    assert draw(None) != draw(None)
    with pytest.raises(ValueError, match="non-negative"):
        rng_for(-1)


@given(st.integers(0, 50), st.integers(0, 2**32))
def test_shuffle_rows_is_a_permutation(rows: int, seed: int) -> None:
    table = pa.table({"row": list(range(rows))})
    shuffled = shuffle_rows(table, rng_for(seed)).column("row").to_pylist()
    assert sorted(shuffled) == list(range(rows))
    assert shuffled == shuffle_rows(table, rng_for(seed)).column("row").to_pylist()


def test_shuffle_rows_moves_rows() -> None:
    table = pa.table({"row": list(range(100))})
    assert shuffle_rows(table, rng_for(0)).column("row").to_pylist() != list(range(100))


@given(st.integers(0, 40), st.integers(1, 9))
def test_split_evenly_cuts_contiguous_near_equal_slices(rows: int, n: int) -> None:
    parts = split_evenly(pa.table({"row": list(range(rows))}), n)
    sizes = [p.num_rows for p in parts]
    assert len(parts) == n and max(sizes) - min(sizes) <= 1
    assert [v for p in parts for v in p.column("row").to_pylist()] == list(range(rows))


def test_split_by_index_keeps_order_within_parts() -> None:
    table = pa.table({"v": [10, 11, 12, 13, 14]})
    parts = split_by_index(table, np.array([2, 0, 2, 0, 1]), 4)
    assert [p.column("v").to_pylist() for p in parts] == [[11, 13], [14], [10, 12], []]


def test_bad_partition_counts() -> None:
    table = pa.table({"x": [1]})
    with pytest.raises(ValueError, match="at least 1"):
        split_randomly(table, 0, rng_for(0))
    with pytest.raises(ValueError, match="at least 1"):
        split_evenly(table, 0)


def test_concat_parts_unifies_types_and_keeps_empty_schema() -> None:
    ints = pa.table({"x": pa.array([1], pa.int64())})
    nulls = pa.table({"x": pa.nulls(2)})
    merged = concat_parts([ints, ints.slice(0, 0), nulls])
    assert merged.column("x").to_pylist() == [1, None, None] and merged.schema.field("x").type == pa.int64()
    assert concat_parts([ints.slice(0, 0)]).schema == ints.schema
    assert concat_parts([]).num_columns == 0
