"""From the logical plan to the stages that run: pure, no cluster needed.

Fusion: consecutive maps run as one task (``ReadRange->Map(f)->MapBatches(g)``), so a
block goes from one function to the next in the worker's memory instead of through the
object store. A map fuses into the stage before it when both run as tasks with the same
resources and concurrency cap; a map on an actor pool takes in the task maps before it
(not a read, so reads stay spread over the cluster). A stage has its own tree below it:
a dataset used twice in one plan (``ds.union(ds)``) is read twice, as in Ray.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa

from manta.data._internal import logical
from manta.data._internal.logical import ActorPoolStrategy, Compute, TaskPoolStrategy
from manta.data._internal.transforms import FilterExpr, Project, Transform


@dataclass(eq=False)
class Stage:
    """One operator of the physical plan. ``kind`` is "read", "input", "map", "limit",
    "all_to_all" or "union"."""

    kind: str
    name: str
    inputs: list[Stage] = field(default_factory=list)
    chain: list[Transform] = field(default_factory=list)
    compute: Compute = field(default_factory=TaskPoolStrategy)
    remote_args: dict[str, Any] = field(default_factory=dict)
    min_rows_per_bundle: int | None = None
    source: Any = None  # the Read, InputBlocks, Limit or AllToAll node this stage runs

    def walk(self) -> list[Stage]:
        """Stages of this tree, inputs before the stages that read them."""
        out: list[Stage] = []
        for parent in self.inputs:
            out.extend(parent.walk())
        out.append(self)
        return out


def plan(op: logical.LogicalOp) -> Stage:
    if isinstance(op, logical.Read):
        name = f"Read{op.datasource.get_name()}"
        compute = TaskPoolStrategy(op.concurrency)
        return Stage("read", name, compute=compute, remote_args=dict(op.remote_args), source=op)
    if isinstance(op, logical.InputBlocks):
        return Stage("input", op.name, source=op)
    if isinstance(op, logical.MapOp):
        return _plan_map(op, plan(op.inputs[0]))
    if isinstance(op, logical.Limit):
        return Stage("limit", op.name, [plan(op.inputs[0])], source=op)
    if isinstance(op, logical.AllToAll):
        return Stage("all_to_all", op.name, [plan(parent) for parent in op.inputs], source=op)
    if isinstance(op, logical.Union):
        return Stage("union", op.name, [plan(parent) for parent in op.inputs], source=op)
    raise TypeError(f"no stage for the logical operator {type(op).__name__}")


def _plan_map(op: logical.MapOp, upstream: Stage) -> Stage:
    if _can_fuse(upstream, op):
        return replace(
            upstream,
            name=f"{upstream.name}->{op.transform.name}",
            chain=[*upstream.chain, op.transform],
            compute=op.compute if isinstance(op.compute, ActorPoolStrategy) else upstream.compute,
            min_rows_per_bundle=_larger(upstream.min_rows_per_bundle, op.min_rows_per_bundle),
        )
    return Stage(
        "map",
        op.transform.name,
        [upstream],
        chain=[op.transform],
        compute=op.compute,
        remote_args=dict(op.remote_args),
        min_rows_per_bundle=op.min_rows_per_bundle,
        source=op,
    )


def _can_fuse(upstream: Stage, op: logical.MapOp) -> bool:
    if upstream.kind not in ("read", "map") or not isinstance(upstream.compute, TaskPoolStrategy):
        return False
    if normalized(upstream.remote_args) != normalized(op.remote_args):
        return False
    if isinstance(op.compute, ActorPoolStrategy):
        return upstream.kind == "map"
    if upstream.kind == "read" and op.min_rows_per_bundle is not None:
        return False  # a batch may need rows of several read tasks
    return upstream.compute == op.compute


def normalized(remote_args: dict[str, Any]) -> dict[str, Any]:
    """Remote arguments with Ray's defaults filled in, so that equal requests compare equal."""
    out = {key: value for key, value in remote_args.items() if value is not None}
    out.setdefault("num_cpus", 1)
    if not out.get("num_gpus"):
        out.pop("num_gpus", None)
    return out


def _larger(a: int | None, b: int | None) -> int | None:
    if a is None or b is None:
        return a if b is None else b
    return max(a, b)


def known_num_rows(op: logical.LogicalOp, read_rows: Any) -> int | None:
    """The number of rows, if it is known without running anything. ``read_rows(read)``
    gives a read's row count or ``None``."""
    if isinstance(op, logical.InputBlocks):
        return _total([meta.num_rows for _, meta in op.blocks])
    if isinstance(op, logical.Read):
        return read_rows(op)  # type: ignore[no-any-return]
    if isinstance(op, logical.MapOp) and op.keeps_rows:
        return known_num_rows(op.inputs[0], read_rows)
    if isinstance(op, logical.Limit):
        below = known_num_rows(op.inputs[0], read_rows)
        return None if below is None else min(below, op.limit)
    if isinstance(op, logical.Union):
        return _total([known_num_rows(parent, read_rows) for parent in op.inputs])
    if isinstance(op, logical.AllToAll) and op.kind in ("random_shuffle", "randomize_block_order", "sort"):
        return known_num_rows(op.inputs[0], read_rows)
    return None


def _total(counts: list[int | None]) -> int | None:
    known = [c for c in counts if c is not None]
    return sum(known) if len(known) == len(counts) else None


def known_schema(
    op: logical.LogicalOp,
    read_schema: Callable[[logical.Read], pa.Schema | None],
    input_schema: Callable[[logical.InputBlocks], pa.Schema | None],
) -> pa.Schema | None:
    """The schema, if it is known without running anything: through operators that keep
    their input's columns (sorts, shuffles, limits, unions, expression filters) and projections."""
    if isinstance(op, logical.Read):
        return read_schema(op)
    if isinstance(op, logical.InputBlocks):
        return input_schema(op)
    if isinstance(op, logical.Union):  # known if every input's is, and they agree
        schemas = [known_schema(parent, read_schema, input_schema) for parent in op.inputs]
        first = schemas[0]
        return first if first is not None and all(first == other for other in schemas[1:]) else None
    keeps = isinstance(op, logical.Limit) or (isinstance(op, logical.AllToAll) and op.kind in _SCHEMA_KEEPING)
    if keeps:
        return known_schema(op.inputs[0], read_schema, input_schema)
    if isinstance(op, logical.MapOp) and isinstance(op.transform, (Project, FilterExpr)):
        below = known_schema(op.inputs[0], read_schema, input_schema)
        return None if below is None else op.transform.schema_of(below)
    return None


_SCHEMA_KEEPING = ("sort", "random_shuffle", "randomize_block_order", "repartition")
