"""Map steps and batch formats in-process: what user functions see and what they may return."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from manta.data._internal import batches, transforms
from manta.data._internal.transforms import UserFn
from manta.exceptions import UserCodeException


def _run(step: transforms.Transform, *blocks: pa.Table) -> pa.Table:
    return transforms.concat(list(transforms.run_chain([step], blocks, 1 << 30)))


BLOCK = pa.table({"id": np.arange(6), "name": [f"n{i}" for i in range(6)]})


def test_map_rows_sees_python_values_and_builds_columns():
    out = _run(
        transforms.MapRows(UserFn(lambda r: {"double": r["id"] * 2, "name": r["name"].upper()})), BLOCK
    )
    assert out.column("double").to_pylist() == [0, 2, 4, 6, 8, 10]
    assert out.column("name").to_pylist()[0] == "N0"


def test_a_row_function_that_returns_no_dict_is_named_in_the_error():
    def bad(row):
        return 5

    with pytest.raises(TypeError, match=r"map\(bad\)") as info:
        _run(transforms.MapRows(UserFn(bad)), BLOCK)
    assert "must return a dict" in str(info.value) and "int" in str(info.value)


def test_a_user_error_carries_the_row_it_failed_on():
    def fails(row):
        if row["id"] == 4:
            raise KeyError("nope")
        return row

    with pytest.raises(UserCodeException) as info:
        _run(transforms.MapRows(UserFn(fails)), BLOCK)
    assert "'id': 4" in str(info.value) and "fails" in str(info.value)
    assert isinstance(info.value.__cause__, KeyError)


@pytest.mark.parametrize("fmt", ["numpy", "pandas", "pyarrow"])
def test_map_batches_in_each_format(fmt):
    def add_one(batch):
        if fmt == "pyarrow":
            return batch.set_column(0, "id", pa.compute.add(batch.column("id"), 1))
        batch["id"] = batch["id"] + 1
        return batch

    out = _run(transforms.MapBatches(UserFn(add_one), 4, fmt, zero_copy_batch=False), BLOCK)
    assert out.column("id").to_pylist() == [1, 2, 3, 4, 5, 6]


def test_a_batch_function_returning_the_wrong_type_names_function_format_and_type():
    def to_list(batch):
        return [1, 2]

    with pytest.raises(UserCodeException) as info:
        _run(transforms.MapBatches(UserFn(to_list), None, "numpy", True), BLOCK)
    text = str(info.value)
    assert "to_list" in text and "'numpy'" in text and "list" in text


def test_batch_columns_of_unequal_length_are_refused():
    with pytest.raises(UserCodeException, match="different lengths"):
        _run(
            transforms.MapBatches(
                UserFn(lambda b: {"a": np.arange(2), "b": np.arange(3)}), None, "numpy", True
            ),
            BLOCK,
        )


def test_a_generator_batch_function_yields_several_batches():
    def split(batch):
        yield {"id": batch["id"][:1]}
        yield {"id": batch["id"][1:]}

    out = _run(transforms.MapBatches(UserFn(split), None, "numpy", True), BLOCK)
    assert out.column("id").to_pylist() == list(range(6))


def test_flat_map_filter_and_projection():
    flat = _run(transforms.FlatMap(UserFn(lambda r: [r, r])), BLOCK)
    assert flat.num_rows == 12
    kept = _run(transforms.Filter(UserFn(lambda r: r["id"] % 2 == 0)), BLOCK)
    assert kept.column("id").to_pylist() == [0, 2, 4]
    renamed = _run(transforms.Project(rename={"id": "key"}), BLOCK)
    assert renamed.column_names == ["key", "name"]
    with pytest.raises(ValueError, match=r"\['nope'\] are not in the dataset"):
        _run(transforms.Project(select=["nope"]), BLOCK)


def test_an_empty_block_without_columns_passes_projections_and_expression_filters():
    # What map_groups yields for a partition that got no group: no rows, no schema.
    empty = pa.table({})
    steps = [transforms.Project(drop=["id"]), transforms.FilterExpr("id > 1")]
    assert [list(step(iter([empty]))) for step in steps] == [[empty], [empty]]
    assert _run(transforms.FilterExpr("id > 3"), BLOCK).column("id").to_pylist() == [4, 5]


def test_a_callable_class_is_made_once_per_process():
    made = []

    class Model:
        def __init__(self, k):
            made.append(k)
            self.k = k

        def __call__(self, batch):
            return {"id": batch["id"] * self.k}

    fn = UserFn(Model, constructor_args=(3,))
    step = transforms.MapBatches(fn, 2, "numpy", True)
    out = _run(step, BLOCK)
    assert out.column("id").to_pylist() == [0, 3, 6, 9, 12, 15] and made == [3]


def test_output_blocks_are_joined_and_split_near_the_target_size():
    small = [pa.table({"x": np.arange(10)}) for _ in range(5)]
    joined = list(transforms.shape_output(iter(small), 1 << 20))
    assert [b.num_rows for b in joined] == [50]
    big = pa.table({"x": np.arange(100_000)})
    parts = list(transforms.shape_output(iter([big]), big.nbytes // 4))
    assert len(parts) == 4 and sum(p.num_rows for p in parts) == 100_000


def test_items_rows_tensors_and_objects_round_trip():
    class Thing:
        def __init__(self, v):
            self.v = v

    block = batches.from_items(
        [{"a": np.ones((2, 2)), "b": Thing(1)}, {"a": np.zeros((2, 2)), "b": Thing(2)}]
    )
    rows = list(batches.rows(block))
    assert rows[0]["a"].shape == (2, 2) and rows[1]["b"].v == 2
    frame = batches.to_pandas(block)
    assert isinstance(frame, pd.DataFrame) and frame["a"][0].shape == (2, 2)
    assert batches.from_items([1, 2]).column_names == ["item"]
