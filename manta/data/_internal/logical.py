"""The logical plan: what a dataset is, as a chain (or tree, for union and zip) of
operators. Building a dataset only adds nodes here; nothing runs until it is consumed.

Nodes are immutable and shared: ``ds.map(f)`` and ``ds.filter(g)`` both point at ``ds``'s
node, so one dataset can be the base of many.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from manta.data._internal.transforms import Transform
from manta.data.block import BlockMetadata


@dataclass(frozen=True)
class TaskPoolStrategy:
    """Run a map as tasks; ``size`` caps how many run at once."""

    size: int | None = None


@dataclass(frozen=True)
class ActorPoolStrategy:
    """Run a map on a pool of actors, between ``min_size`` and ``max_size`` of them (``size``
    for a fixed pool), each with up to ``max_tasks_in_flight_per_actor`` blocks queued."""

    size: int | None = None
    min_size: int | None = None
    max_size: int | None = None
    max_tasks_in_flight_per_actor: int | None = None

    def __post_init__(self) -> None:
        if self.size is not None:
            if self.min_size is not None or self.max_size is not None:
                raise ValueError("ActorPoolStrategy takes either size or min_size/max_size, not both")
            if self.size < 1:
                raise ValueError(f"ActorPoolStrategy size must be at least 1, got {self.size}")
            object.__setattr__(self, "min_size", self.size)
            object.__setattr__(self, "max_size", self.size)
        low = 1 if self.min_size is None else self.min_size
        if low < 1:
            raise ValueError(f"ActorPoolStrategy min_size must be at least 1, got {low}")
        if self.max_size is not None and self.max_size < low:
            raise ValueError(f"ActorPoolStrategy min_size {low} is above max_size {self.max_size}")
        object.__setattr__(self, "min_size", low)
        if self.max_tasks_in_flight_per_actor is not None and self.max_tasks_in_flight_per_actor < 1:
            raise ValueError("max_tasks_in_flight_per_actor must be at least 1")


Compute = TaskPoolStrategy | ActorPoolStrategy


@dataclass(frozen=True, eq=False)
class LogicalOp:
    inputs: tuple[LogicalOp, ...]
    name: str

    def walk(self) -> Iterator[LogicalOp]:
        """This node and everything below it, inputs first, each once."""
        seen: set[int] = set()

        def visit(op: LogicalOp) -> Iterator[LogicalOp]:
            if id(op) in seen:
                return
            seen.add(id(op))
            for parent in op.inputs:
                yield from visit(parent)
            yield op

        return visit(self)


@dataclass(frozen=True, eq=False)
class Read(LogicalOp):
    datasource: Any
    parallelism: int
    remote_args: dict[str, Any] = field(default_factory=dict)
    concurrency: int | None = None
    # The read's tasks, listed when it first runs and kept for later runs (filled once).
    listed_tasks: list[Any] = field(default_factory=list, compare=False)


@dataclass(frozen=True, eq=False)
class InputBlocks(LogicalOp):
    """Blocks already in the object store: ``from_*`` and materialized datasets."""

    blocks: tuple[tuple[Any, BlockMetadata], ...]


@dataclass(frozen=True, eq=False)
class MapOp(LogicalOp):
    transform: Transform
    compute: Compute = TaskPoolStrategy()
    remote_args: dict[str, Any] = field(default_factory=dict)
    # A task waits for this many input rows (a batch), joining small blocks.
    min_rows_per_bundle: int | None = None
    # Whether the transform changes the number of rows (a count can then skip it).
    keeps_rows: bool = False


@dataclass(frozen=True, eq=False)
class Limit(LogicalOp):
    limit: int


@dataclass(frozen=True, eq=False)
class AllToAll(LogicalOp):
    """An operator that needs all of its input first: shuffles, sorts, aggregations,
    repartitioning, zip. ``kind`` names the algorithm in ``all_to_all``; ``args`` are its."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Union(LogicalOp):
    pass
