from __future__ import annotations

import itertools
import math
import pickle

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from manta.data._internal.grouping import (
    STATE_PREFIX,
    aggregate_all,
    aggregate_partial,
    column_aggs,
    finalize_groups,
    group_offsets,
    output_names,
    single_value,
    split_groups,
)
from manta.data._internal.hashing import hash_partition
from manta.data._internal.shuffling import concat_parts
from manta.data._internal.sorting import SortKey, sort_table
from manta.data.aggregate import AggregateFn, Count, Max, Mean, Min, Std, Sum, Unique

rows = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(-3, 3)),
        st.one_of(st.none(), st.integers(-1000, 1000)),
    ),
    max_size=60,
)


def _blocks(table: pa.Table, cuts: list[int]) -> list[pa.Table]:
    edges = sorted({0, table.num_rows, *(c % (table.num_rows + 1) for c in cuts)})
    return [table.slice(a, b - a) for a, b in itertools.pairwise(edges)] or [table]


def _close(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is None and b is None
    assert isinstance(a, (int, float)) and isinstance(b, (int, float))
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@given(rows, st.lists(st.integers(0, 60), max_size=4), st.integers(1, 4))
def test_blockwise_groupby_equals_pandas(
    data: list[tuple[int | None, int | None]], cuts: list[int], n: int
) -> None:
    table = pa.table(
        {"k": pa.array([r[0] for r in data], pa.int64()), "x": pa.array([r[1] for r in data], pa.int64())}
    )
    aggs = [Count(), Count("x", ignore_nulls=True), Sum("x"), Min("x"), Max("x"), Mean("x"), Std("x")]
    partials = [aggregate_partial(b, ["k"], aggs) for b in _blocks(table, cuts)]
    # Route partials by key as the executor does, then reduce each partition.
    routed = [hash_partition(p, ["k"], n) for p in partials]
    reduced = [finalize_groups([parts[i] for parts in routed], ["k"], aggs) for i in range(n)]
    got = sort_table(concat_parts(reduced), SortKey("k")).to_pylist()

    frame = table.to_pandas()
    grouped = frame.groupby("k", dropna=False, sort=True)["x"]
    expected = pd.DataFrame(
        {
            "count()": grouped.size(),
            "count(x)": grouped.count(),
            "sum(x)": grouped.sum(min_count=1),
            "min(x)": grouped.min(),
            "max(x)": grouped.max(),
            "mean(x)": grouped.mean(),
            "std(x)": grouped.std(ddof=1),
        }
    )
    assert [row["k"] for row in got] == [None if pd.isna(k) else int(k) for k in expected.index]
    for row, (_, want) in zip(got, expected.iterrows(), strict=True):
        assert row["count()"] == want["count()"]
        assert row["count(x)"] == want["count(x)"]
        for name in ["sum(x)", "min(x)", "max(x)", "mean(x)"]:
            expect = None if pd.isna(want[name]) else float(want[name])
            assert _close(row[name], expect), (name, row, want)
        if want["count(x)"] == 0:
            assert row["std(x)"] is None  # all null: no values, like Ray
        else:
            assert _close(row["std(x)"], float(want["std(x)"]))


def test_groups_sorted_with_null_keys_last_and_output_columns() -> None:
    table = pa.table({"k": [None, 2, 1, None, 2], "x": [5, 3, 4, 1, 7]})
    out = finalize_groups([aggregate_partial(table, "k", [Sum("x"), Sum("x")])], "k", [Sum("x"), Sum("x")])
    assert out.column_names == ["k", "sum(x)", "sum(x)_2"]
    assert out.to_pylist() == [
        {"k": 1, "sum(x)": 4, "sum(x)_2": 4},
        {"k": 2, "sum(x)": 10, "sum(x)_2": 10},
        {"k": None, "sum(x)": 6, "sum(x)_2": 6},
    ]


def test_null_handling_matches_ray() -> None:
    # Expected values are what Ray 2.60 returns for the same rows.
    table = pa.table({"k": [1, 1, 2, 2], "x": pa.array([None, None, 2.0, None], pa.float64())})
    aggs = [Sum("x"), Mean("x"), Std("x"), Count("x"), Count("x", ignore_nulls=True), Unique("x")]
    out = finalize_groups([aggregate_partial(table, ["k"], aggs)], ["k"], aggs).to_pylist()
    assert out[0] == {
        "k": 1,
        "sum(x)": None,
        "mean(x)": None,
        "std(x)": None,
        "count(x)": 2,
        "count(x)_2": 0,
        "unique(x)": [None],
    }
    assert out[1]["sum(x)"] == 2.0 and math.isnan(out[1]["std(x)"]) and out[1]["unique(x)"] == [2.0, None]
    strict = [Sum("x", ignore_nulls=False), Mean("x", ignore_nulls=False)]
    out = finalize_groups([aggregate_partial(table, ["k"], strict)], ["k"], strict).to_pylist()
    assert [r["sum(x)"] for r in out] == [None, None] and [r["mean(x)"] for r in out] == [None, None]


def test_multi_key_init_receives_tuple_and_states_survive_pickling() -> None:
    seen: list[object] = []

    def init(key: object) -> set[int]:
        seen.append(key)
        return set()

    agg = AggregateFn(
        init=init,
        accumulate_row=lambda acc, row: acc | {row["x"]},
        merge=lambda a, b: a | b,
        name="xs",
        finalize=lambda acc: sorted(acc),
    )
    table = pa.table({"a": ["p", "p", "q"], "b": [1, 1, 2], "x": [3, 4, 5]})
    partial = aggregate_partial(table, ["a", "b"], [agg])
    assert seen == [("p", 1), ("q", 2)]
    partial = pickle.loads(pickle.dumps(partial))
    assert finalize_groups([partial, partial], ["a", "b"], [agg]).to_pylist() == [
        {"a": "p", "b": 1, "xs": [3, 4]},
        {"a": "q", "b": 2, "xs": [5]},
    ]


def test_plain_states_stay_arrow_typed() -> None:
    partial = aggregate_partial(pa.table({"k": [1, 2], "x": [1.5, 2.0]}), ["k"], [Count(), Sum("x")])
    assert partial.schema.field(f"{STATE_PREFIX}0").type == pa.int64()
    assert partial.schema.field(f"{STATE_PREFIX}1").type == pa.float64()


def test_dataset_level_results_and_empty_dataset() -> None:
    table = pa.table({"i": list(range(23))})
    aggs = [Count(), Sum("i"), Mean("i"), Std("i")]
    partials = [aggregate_partial(table.slice(s, 7), None, aggs) for s in range(0, 23, 7)]
    result = aggregate_all(partials, aggs)
    assert result == {
        "count()": 23,
        "sum(i)": 253,
        "mean(i)": 11.0,
        "std(i)": pytest.approx(6.782329983125268),
    }
    assert type(result["sum(i)"]) is int and type(result["mean(i)"]) is float

    empty = table.slice(0, 0)
    aggs = [Count(), Sum("i"), Min("i"), Mean("i"), Std("i"), Unique("i"), Sum("i", ignore_nulls=False)]
    expected: dict[str, object] = {
        "count()": 0,
        "sum(i)": None,
        "min(i)": None,
        "mean(i)": None,
        "std(i)": None,
        "unique(i)": [],
        "sum(i)_2": 0,
    }
    assert aggregate_all([aggregate_partial(empty, None, aggs)], aggs) == expected
    assert aggregate_all([], aggs) is None  # no blocks at all, as ray.data.from_items([])
    assert single_value(None) is None
    assert single_value(aggregate_all([aggregate_partial(empty, None, [Sum("i")])], [Sum("i")])) is None


def test_keyed_aggregation_of_nothing_is_empty() -> None:
    empty = pa.table({"k": pa.array([], pa.int64()), "x": pa.array([], pa.int64())})
    out = finalize_groups([aggregate_partial(empty, ["k"], [Count()])], ["k"], [Count()])
    assert out.num_rows == 0 and out.column_names == ["k", "count()"]
    assert finalize_groups([], ["k"], [Count()]).column_names == ["k", "count()"]


def test_missing_columns_raise_with_names() -> None:
    table = pa.table({"k": [1], "x": [2]})
    with pytest.raises(ValueError, match=r"column 'nope'.*columns: \['k', 'x'\]"):
        aggregate_partial(table, ["nope"], [Count()])
    with pytest.raises(ValueError, match="column 'y'"):
        aggregate_partial(table, ["k"], [Sum("y")])


def test_helpers_for_the_dataset_layer() -> None:
    assert output_names([Sum("x"), Sum("x"), Sum("x"), Count()]) == [
        "sum(x)",
        "sum(x)_2",
        "sum(x)_3",
        "count()",
    ]
    assert single_value({"a": 1}) == 1 and single_value({"a": 1, "b": 2}) == {"a": 1, "b": 2}
    assert [a.name for a in column_aggs(Sum, None, ["k", "x", "y"], skip=["k"])] == ["sum(x)", "sum(y)"]
    assert [a.name for a in column_aggs(Std, ["x"], ["x"], ddof=0)] == ["std(x)"]
    with pytest.raises(ValueError, match="At least 1 column"):
        column_aggs(Sum, [], ["x"])
    with pytest.raises(ValueError, match="At least 1 column"):
        column_aggs(Sum, None, ["k"], skip=["k"])
    assert [a.name for a in column_aggs(Count, None, [])] == ["count()"]


@given(st.lists(st.tuples(st.sampled_from(["a", "b", None]), st.integers(0, 2)), max_size=30))
def test_split_groups_yields_each_group_once(data: list[tuple[str | None, int]]) -> None:
    table = pa.table({"s": pa.array([r[0] for r in data], pa.string()), "n": [r[1] for r in data]})
    ordered = sort_table(table, SortKey(["s", "n"]))
    groups = list(split_groups(ordered, ["s", "n"]))
    keys = [(g.column("s")[0].as_py(), g.column("n")[0].as_py()) for g in groups]
    assert len(keys) == len(set(keys)) == len(set(data))
    assert sum(g.num_rows for g in groups) == len(data)
    for group in groups:
        assert len(set(zip(group.column("s").to_pylist(), group.column("n").to_pylist(), strict=True))) == 1


def test_split_groups_without_keys_and_nan_keys() -> None:
    assert [g.num_rows for g in split_groups(pa.table({"x": [1, 2]}), None)] == [2]
    assert list(split_groups(pa.table({"x": pa.array([], pa.int64())}), None)) == []
    floats = sort_table(pa.table({"f": [float("nan"), 1.0, float("nan"), None]}), SortKey("f"))
    assert [g.num_rows for g in split_groups(floats, "f")] == [1, 2, 1]


def test_aggregate_needs_keys_or_aggregations() -> None:
    with pytest.raises(ValueError, match="at least one aggregation"):
        aggregate_partial(pa.table({"x": [1]}), None, [])
    assert np.array_equal(aggregate_partial(pa.table({"k": [2, 1, 2]}), "k", []).column("k"), [1, 2])


def _same_state(a: object, b: object) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_state(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return _close(a, b)
    return a == b


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.one_of(st.none(), st.sampled_from([math.nan, -2.0, 0.5, 3.0]))),
        max_size=30,
    ),
    st.booleans(),
)
def test_vectorised_states_equal_group_by_group_states(
    data: list[tuple[int, float | None]], ignore_nulls: bool
) -> None:
    table = sort_table(
        pa.table({"k": [r[0] for r in data], "x": pa.array([r[1] for r in data], pa.float64())}), SortKey("k")
    )
    offsets = group_offsets(table, ["k"])
    aggs = [Count("x", ignore_nulls=ignore_nulls), Count(), Sum("x", ignore_nulls=ignore_nulls)]
    aggs += [Min("x", ignore_nulls=ignore_nulls), Max("x", ignore_nulls=ignore_nulls)]
    aggs += [Mean("x", ignore_nulls=ignore_nulls), Std("x", ignore_nulls=ignore_nulls)]
    for agg in aggs:
        vectorised = agg._grouped_states(table, offsets) if table.num_rows else []
        assert vectorised is not None
        one_by_one = [
            agg.accumulate_block(agg.init(None), table.slice(a, b - a))
            for a, b in itertools.pairwise(offsets)
        ]
        assert len(vectorised) == len(one_by_one)
        for v, o in zip(vectorised, one_by_one, strict=True):
            assert _same_state(v, o), (agg.name, v, o)


def test_nan_and_string_cases_match_ray() -> None:
    # Expected values are what Ray 2.60 returns for the same rows in two blocks.
    table = pa.Table.from_pylist(
        [
            {"k": 1, "x": 1.0, "s": "b"},
            {"k": 1, "x": math.nan, "s": "a"},
            {"k": 2, "x": 3.0, "s": None},
            {"k": 2, "x": 4.0, "s": "c"},
        ]
    )

    def run(*aggs: AggregateFn) -> list[dict[str, object]]:
        partials = [
            aggregate_partial(table.slice(0, 2), ["k"], aggs),
            aggregate_partial(table.slice(2), ["k"], aggs),
        ]
        return finalize_groups(partials, ["k"], aggs).to_pylist()

    lenient = run(Sum("x"), Mean("x"), Std("x"), Min("x"))
    assert lenient[0] == {"k": 1, "sum(x)": None, "mean(x)": None, "std(x)": None, "min(x)": 1.0}
    assert lenient[1]["std(x)"] == pytest.approx(0.7071067811865476)
    strict = run(Sum("x", ignore_nulls=False), Mean("x", ignore_nulls=False))
    assert math.isnan(strict[0]["sum(x)"]) and math.isnan(strict[0]["mean(x)"])  # type: ignore[arg-type]
    assert run(Min("s", ignore_nulls=False), Count("s", ignore_nulls=True)) == [
        {"k": 1, "min(s)": "a", "count(s)": 2},
        {"k": 2, "min(s)": None, "count(s)": 1},
    ]
