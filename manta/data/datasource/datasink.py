"""The write interface: a ``Datasink`` receives each write task's blocks.

The driver calls ``on_write_start``, then every write task calls ``write`` in a worker
with its blocks and a ``TaskContext``, and the driver finishes with
``on_write_complete`` (given every task's return value) or ``on_write_failed``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

import pyarrow as pa

WriteReturnType = TypeVar("WriteReturnType")


@dataclass(frozen=True)
class TaskContext:
    """What a write task knows about itself: its index among the write's tasks (used to
    name output files uniquely)."""

    task_idx: int


@dataclass
class WriteResult(Generic[WriteReturnType]):
    """The outcome of a whole write: rows and bytes written by all tasks, and each
    task's return value from ``Datasink.write`` in task order."""

    num_rows: int
    size_bytes: int
    write_returns: list[WriteReturnType]

    @staticmethod
    def combine(*results: WriteResult[WriteReturnType]) -> WriteResult[WriteReturnType]:
        return WriteResult(
            num_rows=sum(r.num_rows for r in results),
            size_bytes=sum(r.size_bytes for r in results),
            write_returns=list(itertools.chain.from_iterable(r.write_returns for r in results)),
        )


class Datasink(Generic[WriteReturnType]):
    """Where ``Dataset.write_datasink`` sends data; subclass it to write somewhere Manta
    has no writer for. Only ``write`` must be implemented.

    Unlike Ray, ``on_write_start`` takes no schema argument.
    """

    def on_write_start(self) -> None:
        """Called once on the driver before any write task runs (e.g. to create a
        directory or a staging table)."""

    def write(self, blocks: Iterable[pa.Table], ctx: TaskContext) -> WriteReturnType:
        """Write one task's blocks; runs in a worker. The return value reaches
        ``on_write_complete`` in ``WriteResult.write_returns``."""
        raise NotImplementedError

    def on_write_complete(self, write_result: WriteResult[WriteReturnType]) -> None:
        """Called once on the driver after every write task succeeded (e.g. to commit).
        If it raises, ``on_write_failed`` is called."""

    def on_write_failed(self, error: Exception) -> None:
        """Called on the driver, best effort, with the first error of a failed write."""

    def get_name(self) -> str:
        """The name shown for the write operator: the class name without a leading
        underscore or a ``Datasink`` suffix, as in Ray."""
        name = type(self).__name__.lstrip("_")
        suffix = "Datasink"
        return name[: -len(suffix)] if name.endswith(suffix) and name != suffix else name

    @property
    def supports_distributed_writes(self) -> bool:
        """``False`` to run every write task on the driver's node."""
        return True

    @property
    def min_rows_per_write(self) -> int | None:
        """Rows the executor should gather before each ``write`` call; ``None`` lets it
        choose."""
        return None
