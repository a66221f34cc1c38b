"""Blocks: the unit a dataset is made of and moved in.

A block is a ``pyarrow.Table`` of a few to a few hundred megabytes, held in the object
store. Every operator reads and writes blocks; the batch formats users see (``"numpy"``,
``"pandas"``, ``"pyarrow"``) are views made at the edge of a user function
(``manta.data._internal.batches``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

import pyarrow as pa

Block: TypeAlias = pa.Table


@dataclass(frozen=True)
class BlockMetadata:
    """What is known about a block without reading it: rows and bytes (``None`` where a
    reader cannot tell before reading) and the files it came from."""

    num_rows: int | None
    size_bytes: int | None
    input_files: tuple[str, ...] | None = None
    exec_stats: Any = None

    def __post_init__(self) -> None:
        if self.input_files is not None and not isinstance(self.input_files, tuple):
            object.__setattr__(self, "input_files", tuple(self.input_files))

    @staticmethod
    def of(block: Block, input_files: tuple[str, ...] | None = None) -> BlockMetadata:
        return BlockMetadata(block.num_rows, block.nbytes, input_files)
