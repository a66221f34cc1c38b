"""Rewrites of the logical plan before it is planned (pure).

Projection pushdown: a ``select_columns`` (or the columns a groupby needs) directly above
a read whose datasource can read fewer columns becomes part of the read, so Parquet
decodes only those columns.
"""

from __future__ import annotations

import dataclasses

from manta.data._internal import logical
from manta.data._internal.transforms import Project


def optimize(op: logical.LogicalOp) -> logical.LogicalOp:
    inputs = tuple(optimize(parent) for parent in op.inputs)
    if inputs != op.inputs:
        op = dataclasses.replace(op, inputs=inputs)
    pushed = _push_projection(op)
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
