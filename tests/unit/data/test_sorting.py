from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from manta.data._internal.shuffling import concat_parts
from manta.data._internal.sorting import (
    SortKey,
    boundaries,
    merge_sorted,
    partition_block,
    sample_block,
    samples_per_block,
    sort_table,
)

floats = st.one_of(st.none(), st.sampled_from([math.nan, -1.5, 0.0, 2.0, 7.25]))
ints = st.one_of(st.none(), st.integers(-5, 5))
strings = st.one_of(st.none(), st.sampled_from(["", "a", "ab", "b", "é"]))


def _table(rows: list[tuple[int | None, float | None, str | None]]) -> pa.Table:
    return pa.table(
        {
            "i": pa.array([r[0] for r in rows], pa.int64()),
            "f": pa.array([r[1] for r in rows], pa.float64()),
            "s": pa.array([r[2] for r in rows], pa.string()),
            "row": pa.array(range(len(rows)), pa.int64()),
        }
    )


def _comparable(value: object) -> object:
    # NaN != NaN, so compare a stand-in.
    return "NaN" if isinstance(value, float) and math.isnan(value) else value


def _keys_of(table: pa.Table, key: SortKey) -> list[tuple[object, ...]]:
    columns = [table.column(c).to_pylist() for c in key.columns]
    return [tuple(_comparable(v) for v in row) for row in zip(*columns, strict=True)]


@given(
    st.lists(st.tuples(ints, floats, strings), max_size=50),
    st.lists(st.integers(0, 50), max_size=4),
    st.lists(st.sampled_from(["i", "f", "s"]), min_size=1, max_size=3, unique=True),
    st.lists(st.booleans(), min_size=3, max_size=3),
    st.integers(1, 5),
    st.integers(1, 12),
)
def test_sample_partition_merge_equals_global_sort(
    rows: list[tuple[int | None, float | None, str | None]],
    cuts: list[int],
    columns: list[str],
    directions: list[bool],
    num_partitions: int,
    sample_size: int,
) -> None:
    table = _table(rows)
    key = SortKey(columns, directions[: len(columns)])
    edges = sorted({0, table.num_rows, *(c % (table.num_rows + 1) for c in cuts)})
    blocks = [table.slice(a, b - a) for a, b in itertools.pairwise(edges)] or [table]

    points = boundaries([sample_block(b, key, sample_size) for b in blocks], key, num_partitions)
    assert len(points) == num_partitions - 1
    parted = [partition_block(b, key, points) for b in blocks]
    assert all(len(parts) == num_partitions for parts in parted)
    for parts in parted:
        for part in parts:
            assert _keys_of(part, key) == _keys_of(sort_table(part, key), key)
    outputs = [merge_sorted([parts[j] for parts in parted], key) for j in range(num_partitions)]
    result = concat_parts(outputs)

    assert _keys_of(result, key) == _keys_of(sort_table(table, key), key)
    assert Counter(result.column("row").to_pylist()) == Counter(range(len(rows)))
    owners: dict[tuple[object, ...], int] = {}
    for j, output in enumerate(outputs):
        for k in _keys_of(output, key):
            assert owners.setdefault(k, j) == j  # equal keys never straddle two parts


def test_nulls_and_nan_go_last_in_both_directions() -> None:
    # The order Ray 2.60 gives for ds.sort("a") and ds.sort("a", descending=True).
    table = pa.table({"a": [3, None, 1, math.nan, 2, None, 5, 4, math.nan]})
    ascending = sort_table(table, SortKey("a")).column("a").to_pylist()
    descending = sort_table(table, SortKey("a", descending=True)).column("a").to_pylist()
    assert [_comparable(v) for v in ascending] == [1, 2, 3, 4, 5, "NaN", "NaN", None, None]
    assert [_comparable(v) for v in descending] == [5, 4, 3, 2, 1, "NaN", "NaN", None, None]


def test_all_equal_keys_land_in_one_part() -> None:
    table = pa.table({"k": [7] * 10, "v": list(range(10))})
    key = SortKey("k")
    points = boundaries([sample_block(table, key, 5)], key, 4)
    parts = partition_block(table, key, points)
    assert [p.num_rows for p in parts] == [10, 0, 0, 0]
    assert merge_sorted(parts, key).column("v").to_pylist() == list(range(10))


def test_empty_input_and_no_boundaries() -> None:
    key = SortKey("k")
    empty = pa.table({"k": pa.array([], pa.int64())})
    assert boundaries([sample_block(empty, key, 3)], key, 3) == [(None,), (None,)]
    assert [p.num_rows for p in partition_block(empty, key, [(None,), (None,)])] == [0, 0, 0]
    table = pa.table({"k": [2, 1]})
    assert partition_block(table, key, [])[0].column("k").to_pylist() == [1, 2]
    assert merge_sorted([empty, empty], key).num_rows == 0


def test_boundaries_adapt_to_block_types() -> None:
    key = SortKey("k")
    nulls = pa.table({"k": pa.nulls(3)})
    parts = partition_block(nulls, key, [(5,)])
    assert [p.num_rows for p in parts] == [0, 3]
    floats = pa.table({"k": [0.5, 5.0, 9.5]})
    assert [p.num_rows for p in partition_block(floats, key, [(5,)])] == [2, 1]


def test_sample_block_takes_key_columns() -> None:
    table = pa.table({"k": list(range(100)), "v": list(range(100))})
    key = SortKey("k")
    assert sample_block(table, key, 4).to_pydict() == {"k": [0, 25, 50, 75]}
    drawn = sample_block(table, key, 10, np.random.default_rng(0))
    assert drawn.column_names == ["k"] and len(set(drawn.column("k").to_pylist())) == 10
    assert sample_block(table, key, 1000).num_rows == 100
    assert samples_per_block(4, 8) == 5 and samples_per_block(1, 100) == 1


def test_sort_key_arguments_and_schema_validation() -> None:
    assert SortKey(["a", "b"], [True, False]).to_arrow_sort_args() == [
        ("a", "descending"),
        ("b", "ascending"),
    ]
    assert SortKey("a", True).descending == [True]
    assert SortKey(None).columns == []
    with pytest.raises(ValueError, match="Key must be a string or a list of strings"):
        SortKey(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Length of `descending`"):
        SortKey(["a", "b"], [True])
    schema = pa.schema([("a", pa.int64()), ("b", pa.string())])
    SortKey("a").validate_schema(schema)
    SortKey("zzz").validate_schema(None)
    with pytest.raises(ValueError) as raised:
        SortKey(["a", "nope"]).validate_schema(schema)
    assert str(raised.value) == (
        "You specified the column 'nope', but there's no such column in the dataset. "
        "The dataset has columns: ['a', 'b']"
    )
    assert SortKey("a") == SortKey(["a"], [False]) and hash(SortKey("a")) == hash(SortKey(["a"]))
    with pytest.raises(ValueError, match="at least 1"):
        boundaries([], SortKey("a"), 0)
