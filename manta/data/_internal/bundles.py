"""A bundle: the blocks one task takes or one operator hands on, with their metadata."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from manta.data.block import BlockMetadata


@dataclass(frozen=True)
class RefBundle:
    blocks: tuple[tuple[Any, BlockMetadata], ...]

    @property
    def num_rows(self) -> int:
        return sum(meta.num_rows or 0 for _, meta in self.blocks)

    @property
    def size_bytes(self) -> int:
        return sum(meta.size_bytes or 0 for _, meta in self.blocks)

    @property
    def refs(self) -> list[Any]:
        return [ref for ref, _ in self.blocks]

    @staticmethod
    def join(bundles: list[RefBundle]) -> RefBundle:
        return RefBundle(tuple(block for bundle in bundles for block in bundle.blocks))
