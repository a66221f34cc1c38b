from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from manta.data.aggregate import (
    AbsMax,
    AggregateFn,
    AggregateFnV2,
    Count,
    Max,
    Mean,
    Min,
    Quantile,
    Std,
    Sum,
    Unique,
)


def _run(agg: AggregateFn, *blocks: pa.Table, key: Any = ()) -> Any:
    """Fold blocks as the executor does: one accumulator per block, merged, finalized."""
    states = [agg.accumulate_block(agg.init(key), b) for b in blocks]
    state = states[0]
    for other in states[1:]:
        state = agg.merge(state, other)
    return agg.finalize(state)


@pytest.mark.parametrize(
    ("agg", "name"),
    [
        (Count(), "count()"),
        (Count("x"), "count(x)"),
        (Sum("x"), "sum(x)"),
        (Sum(), "sum(None)"),
        (Min("x"), "min(x)"),
        (Max("x"), "max(x)"),
        (Mean("x"), "mean(x)"),
        (Std("x", ddof=0), "std(x)"),
        (AbsMax("x"), "abs_max(x)"),
        (Quantile("x", q=0.9), "quantile(x)"),
        (Unique("x"), "unique(x)"),
        (Sum("x", alias_name="total"), "total"),
    ],
)
def test_output_names_match_ray(agg: AggregateFnV2[Any, Any], name: str) -> None:
    assert agg.name == name
    assert agg.get_agg_name() == name.split("(")[0]


def test_defaults_match_ray() -> None:
    assert Count("x")._ignore_nulls is False and Unique("x")._ignore_nulls is False
    assert Sum("x")._ignore_nulls and Mean("x")._ignore_nulls and Std("x")._ddof == 1
    assert Quantile("x")._q == 0.5 and Sum("x").get_target_column() == "x"


@given(st.lists(st.lists(st.floats(-1e6, 1e6), max_size=8), min_size=1, max_size=5))
def test_blockwise_statistics_equal_numpy(chunks: list[list[float]]) -> None:
    blocks = [pa.table({"x": pa.array(c, pa.float64())}) for c in chunks]
    values = np.array([v for c in chunks for v in c])
    if len(values) == 0:
        assert _run(Sum("x"), *blocks) is None and _run(Count(), *blocks) == 0
        return
    assert _run(Count(), *blocks) == len(values)
    assert _run(Sum("x"), *blocks) == pytest.approx(values.sum(), abs=1e-6)
    assert _run(Min("x"), *blocks) == values.min() and _run(Max("x"), *blocks) == values.max()
    assert _run(AbsMax("x"), *blocks) == np.abs(values).max()
    assert _run(Mean("x"), *blocks) == pytest.approx(values.mean(), abs=1e-6)
    assert _run(Std("x", ddof=0), *blocks) == pytest.approx(values.std(), rel=1e-6, abs=1e-6)
    if len(values) > 1:
        assert _run(Std("x"), *blocks) == pytest.approx(values.std(ddof=1), rel=1e-6, abs=1e-6)
    else:
        assert math.isnan(_run(Std("x"), *blocks))
    assert _run(Quantile("x", q=0.3), *blocks) == pytest.approx(np.quantile(values, 0.3), abs=1e-6)


def test_null_protocol() -> None:
    values = pa.table({"x": pa.array([1.0, None, 3.0])})
    nulls = pa.table({"x": pa.array([None, None], pa.float64())})
    assert _run(Sum("x"), values, nulls) == 4.0
    assert _run(Sum("x"), nulls) is None
    assert _run(Sum("x", ignore_nulls=False), values) is None
    assert _run(Sum("x", ignore_nulls=False), pa.table({"x": [1, 2]}), pa.table({"x": [3]})) == 6
    assert _run(Mean("x", ignore_nulls=False), nulls, pa.table({"x": [1.0]})) is None
    assert _run(Count("x"), values, nulls) == 5 and _run(Count("x", ignore_nulls=True), values, nulls) == 2
    assert _run(Quantile("x"), nulls) is None and _run(Quantile("x", ignore_nulls=False), values) is None
    assert _run(AbsMax("x"), pa.table({"x": [-7, 3]}), nulls) == 7
    assert _run(Min("s"), pa.table({"s": ["b", "a", None]}), pa.table({"s": ["c"]})) == "a"


def test_unique_keeps_first_seen_order_nulls_and_one_nan() -> None:
    a = pa.table({"x": pa.array([2.0, None, math.nan, 2.0])})
    b = pa.table({"x": pa.array([1.0, math.nan])})
    out = _run(Unique("x"), a, b)
    assert out[0] == 2.0 and out[1] is None and math.isnan(out[2]) and out[3] == 1.0 and len(out) == 4
    assert _run(Unique("x", ignore_nulls=True), a) == [2.0, pytest.approx(math.nan, nan_ok=True)]


def test_unique_of_list_columns() -> None:
    lists = pa.table({"x": pa.array([[1, 2], [2, 3], [1, 2], None])})
    assert _run(Unique("x", ignore_nulls=True), lists) == [(1, 2), (2, 3)]
    assert _run(Unique("x", encode_lists=True, ignore_nulls=True), lists) == [1, 2, 3]
    hashed = _run(Unique("x", encode_lists=Unique.ListEncodingMode.HASH, ignore_nulls=True), lists)
    assert len(hashed) == 2 and all(isinstance(h, int) for h in hashed)
    structs = pa.table({"x": [{"a": 1}, {"a": 1}, {"a": 2}]})
    assert _run(Unique("x"), structs) == [{"a": 1}, {"a": 2}]


def test_aggregate_fn_from_rows_and_validation() -> None:
    product = AggregateFn(
        init=lambda key: 1,
        accumulate_row=lambda acc, row: acc * row["x"],
        merge=lambda a, b: a * b,
        name="prod",
    )
    assert _run(product, pa.table({"x": [2, 3]}), pa.table({"x": [4]})) == 24
    with pytest.raises(ValueError, match="Exactly one of accumulate_row or accumulate_block"):
        AggregateFn(init=lambda k: 0, merge=lambda a, b: a, name="bad")
    with pytest.raises(TypeError, match="`name` must be provided"):
        AggregateFn(init=lambda k: 0, merge=lambda a, b: a, name=None, accumulate_row=lambda a, r: a)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Column to aggregate on has to be provided"):
        AbsMax()


def test_missing_columns_raise() -> None:
    with pytest.raises(ValueError, match="Referencing column 'y' not present"):
        Sum("y").accumulate_block(None, pa.table({"x": [1]}))
    with pytest.raises(ValueError, match=r"no such column in the dataset\. The dataset has columns: \['x'\]"):
        Sum("y")._validate(pa.schema([("x", pa.int64())]))
    Count()._validate(pa.schema([("x", pa.int64())]))


class _Product(AggregateFnV2[int, int]):
    def __init__(self, on: str) -> None:
        super().__init__(f"prod({on})", lambda: 1, on=on, ignore_nulls=True)

    def aggregate_block(self, block: pa.Table) -> int:
        return int(np.prod(block.column(self._target_col_name).to_numpy()))

    def combine(self, current_accumulator: int, new: int) -> int:
        return current_accumulator * new

    def finalize(self, accumulator: int) -> int:
        return -accumulator


def test_user_subclass_gets_the_null_safe_protocol() -> None:
    agg = _Product("x")
    assert _run(agg, pa.table({"x": [2, 3]}), pa.table({"x": [5]})) == -30
    finalize: Any = agg.finalize  # the null-safe wrapper, which accepts None
    assert finalize(None) is None and agg.merge(None, 4) == 4 and agg.merge(4, None) == 4


def test_builtins_pickle_with_the_standard_library() -> None:
    aggs = [
        Count(),
        Sum("x"),
        Min("x"),
        Max("x"),
        Mean("x"),
        Std("x"),
        AbsMax("x"),
        Quantile("x"),
        Unique("x"),
    ]
    block = pa.table({"x": [3, 1, 2]})
    for agg in aggs:
        clone = pickle.loads(pickle.dumps(agg))
        assert clone.name == agg.name and _run(clone, block) == _run(agg, block)
