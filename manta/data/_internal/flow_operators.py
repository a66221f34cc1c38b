"""Operators that only route bundles: ``limit`` and ``union``."""

from __future__ import annotations

from typing import Any

import manta
from manta.data._internal import transforms
from manta.data._internal.bundles import RefBundle
from manta.data._internal.operators import Operator
from manta.data._internal.planner import Stage
from manta.data.block import BlockMetadata
from manta.data.context import DataContext


class LimitOperator(Operator):
    """Passes rows on until the limit; the block that crosses it is cut in the driver (one
    block, once). Reaching the limit finishes the operator, and the executor then stops
    everything upstream."""

    def __init__(self, stage: Stage, inputs: list[Operator], context: DataContext) -> None:
        super().__init__(stage, inputs, context)
        self._left = int(stage.source.limit)

    def add_input(self, bundle: RefBundle, index: int) -> None:
        for ref, meta in bundle.blocks:
            if self._left <= 0:
                return
            rows = meta.num_rows or 0
            if rows > self._left:
                ref, meta = _head(ref, self._left)
                rows = self._left
            self._left -= rows
            self.outputs.append(RefBundle(((ref, meta),)))
            self.stats.add_block(rows, meta.size_bytes or 0, None)

    def finished(self) -> bool:
        return self._left <= 0 or super().finished()


def _head(ref: Any, rows: int) -> tuple[Any, BlockMetadata]:
    block = transforms.compact(manta.get(ref).slice(0, rows))
    meta = BlockMetadata(block.num_rows, block.nbytes)
    return manta.put(block), meta


class UnionOperator(Operator):
    """Bundles of every input; in input order (all of the first input's, then the
    second's, ...) when order is preserved, else as they come."""

    def __init__(self, stage: Stage, inputs: list[Operator], context: DataContext) -> None:
        super().__init__(stage, inputs, context)
        self._held: list[list[RefBundle]] = [[] for _ in inputs]
        self._current = 0

    def add_input(self, bundle: RefBundle, index: int) -> None:
        self.stats.add_block(bundle.num_rows, bundle.size_bytes, None)
        if not self.context.execution_options.preserve_order or index == self._current:
            self.outputs.append(bundle)
        else:
            self._held[index].append(bundle)

    def input_done(self, index: int) -> None:
        super().input_done(index)
        while self._current < len(self.inputs) and self.inputs_done[self._current]:
            self._current += 1
            if self._current < len(self.inputs):
                self.outputs.extend(self._held[self._current])
                self._held[self._current] = []

    def queued_input_bytes(self, index: int | None = None) -> int:
        held = self._held if index is None else [self._held[index]]
        return sum(b.size_bytes for bundles in held for b in bundles)

    def held_bytes(self) -> int:
        return super().held_bytes() + self.queued_input_bytes()
