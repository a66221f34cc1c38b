"""Rewrites of the logical plan before it is planned (pure).

Projection pushdown: a ``select_columns`` (or the columns a groupby needs) directly above
a read whose datasource can read fewer columns becomes part of the read, so Parquet
decodes only those columns. Predicate pushdown: a ``filter(expr=...)`` directly above such
a read (after any projection was pushed) becomes the read's filter, so Parquet skips row
groups by their statistics and files by their partition values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pyarrow as pa

from manta.data._internal import logical
from manta.data._internal.transforms import FilterExpr, Project


def optimize(
    op: logical.LogicalOp, read_schema: Callable[[logical.Read], pa.Schema | None] = lambda read: None
) -> logical.LogicalOp:
    """``read_schema``: the columns a read yields, where known (predicates are pushed only
    into reads known to yield every column they name)."""
    inputs = tuple(optimize(parent, read_schema) for parent in op.inputs)
    if inputs != op.inputs:
        op = dataclasses.replace(op, inputs=inputs)
    pushed = _push_projection(op) or _push_predicate(op, read_schema)
    return op if pushed is None else pushed


def _push_projection(op: logical.LogicalOp) -> logical.Read | None:
    if not isinstance(op, logical.MapOp) or not isinstance(op.transform, Project):
        return None
    project = op.transform
    if project.select is None or project.drop is not None or project.rename is not None:
        return None
    (read,) = op.inputs
    if not isinstance(read, logical.Read) or not read.datasource.supports_projection_pushdown():
        return None
    datasource = read.datasource.apply_projection({column: column for column in project.select})
    return dataclasses.replace(read, datasource=datasource, listed_tasks=[])


def _push_predicate(
    op: logical.LogicalOp, read_schema: Callable[[logical.Read], pa.Schema | None]
) -> logical.Read | None:
    if not isinstance(op, logical.MapOp) or not isinstance(op.transform, FilterExpr):
        return None
    (read,) = op.inputs
    if not isinstance(read, logical.Read) or not read.datasource.supports_predicate_pushdown():
        return None
    # Only over columns the read yields: a scan filters on every column of the files, where
    # the filter above it would have found the column missing.
    schema = read_schema(read)
    if schema is None or not op.transform.columns <= set(schema.names):
        return None
    datasource = read.datasource.apply_predicate(op.transform.expression)
    return dataclasses.replace(read, datasource=datasource, listed_tasks=[])
