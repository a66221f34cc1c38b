"""Projection and predicate pushdown into reads that can take them, without a cluster."""

from __future__ import annotations

import pyarrow as pa

from manta.data._internal import logical, optimizer, planner, transforms
from manta.data.aggregate import AggregateFn, Count, Mean, Sum
from manta.data.grouped_data import _columns_needed


class _Columns:
    def __init__(self, columns=None, can=True, predicate=None):
        self.columns, self.can, self.predicate = columns, can, predicate

    def get_name(self) -> str:
        return "Columns"

    def supports_projection_pushdown(self) -> bool:
        return self.can

    def apply_projection(self, projection_map):
        return _Columns(list(projection_map), self.can, self.predicate)

    def supports_predicate_pushdown(self) -> bool:
        return self.can

    def apply_predicate(self, predicate):
        return _Columns(self.columns, self.can, predicate)


def _schema_of(read):
    return pa.schema([(name, pa.int64()) for name in read.datasource.columns or ["a", "b", "c"]])


def _filter(parent, text):
    step = transforms.FilterExpr(text)
    return logical.MapOp((parent,), step.name, step)


def _select(parent, columns):
    project = transforms.Project(select=columns)
    return logical.MapOp((parent,), project.name, project, keeps_rows=True)


def test_a_selection_above_a_read_that_can_project_becomes_part_of_the_read():
    read = logical.Read((), "ReadColumns", _Columns(), -1)
    out = optimizer.optimize(_select(read, ["a", "b"]))
    assert isinstance(out, logical.Read) and out.datasource.columns == ["a", "b"]
    assert read.datasource.columns is None  # the dataset's own plan is untouched


def test_a_read_that_cannot_project_keeps_the_selection():
    read = logical.Read((), "ReadColumns", _Columns(can=False), -1)
    out = optimizer.optimize(_select(read, ["a"]))
    assert isinstance(out, logical.MapOp) and out.inputs[0] is read


def test_pushdown_happens_below_other_operators_and_fusion_still_applies():
    read = logical.Read((), "ReadColumns", _Columns(), -1)
    step = transforms.MapRows(transforms.UserFn(lambda r: r))
    top = logical.MapOp((_select(read, ["x"]),), step.name, step)
    stage = planner.plan(optimizer.optimize(top))
    assert stage.kind == "read" and stage.name == "ReadColumns->Map(<lambda>)"
    assert stage.source.datasource.columns == ["x"]


def test_the_columns_an_aggregation_reads():
    assert _columns_needed(["k"], [Sum("v"), Mean("w"), Count()]) == ["k", "v", "w"]
    assert _columns_needed(None, [Count()]) == []
    user = AggregateFn(
        init=lambda k: 0, merge=lambda a, b: a + b, accumulate_row=lambda a, r: a + 1, name="n"
    )
    assert _columns_needed(["k"], [user]) is None


def test_an_expression_filter_above_a_read_becomes_its_predicate_after_a_projection():
    read = logical.Read((), "ReadColumns", _Columns(), -1)
    out = optimizer.optimize(_filter(_select(read, ["a", "b"]), "a > 1 and b < 3"), _schema_of)
    assert isinstance(out, logical.Read) and out.datasource.columns == ["a", "b"]
    assert out.datasource.predicate.equals(transforms.FilterExpr("a > 1 and b < 3").expression)


def test_a_predicate_stays_above_a_read_that_lacks_its_column_or_whose_columns_are_unknown():
    read = logical.Read((), "ReadColumns", _Columns(), -1)
    # The filter must fail on the missing column, as it does unpushed; a scan would find it.
    kept = optimizer.optimize(_filter(_select(read, ["a"]), "b > 1"), _schema_of)
    assert isinstance(kept, logical.MapOp) and kept.inputs[0].datasource.predicate is None
    unknown = optimizer.optimize(_filter(read, "a > 1"))
    assert isinstance(unknown, logical.MapOp)
    cannot = logical.Read((), "ReadColumns", _Columns(can=False), -1)
    assert isinstance(optimizer.optimize(_filter(cannot, "a > 1"), _schema_of), logical.MapOp)
