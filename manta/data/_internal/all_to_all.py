"""Operators that need all of their input before any output: shuffles, sorts, groupby,
repartition and zip.

Each runs as a split step (a task per input block, cutting it into one part per output)
and a merge step (a task per output, joining its parts), the classic map/reduce shuffle;
sorts and groupby first sample the blocks to choose the range boundaries of the outputs,
so outputs come out in key order. An ``Algorithm`` says how to split and how to merge;
the operator runs the tasks. Intermediate parts live in the object store until their
merge has run.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

import manta
from manta.data._internal import grouping, remote_calls, shuffling, sorting, transforms
from manta.data._internal.bundles import RefBundle
from manta.data._internal.operators import Operator
from manta.data._internal.planner import Stage
from manta.data.context import DataContext


class Algorithm:
    def split(self, index: int, block: pa.Table) -> Sequence[pa.Table]:
        raise NotImplementedError

    def merge(self, index: int, parts: list[pa.Table]) -> pa.Table:
        return transforms.concat(parts) if parts else pa.table({})


@dataclass
class RandomShuffle(Algorithm):
    seed: int | None
    outputs: int

    def split(self, index: int, block: pa.Table) -> Sequence[pa.Table]:
        return shuffling.split_randomly(block, self.outputs, shuffling.rng_for(self.seed, 0, index))

    def merge(self, index: int, parts: list[pa.Table]) -> pa.Table:
        return shuffling.shuffle_rows(super().merge(index, parts), shuffling.rng_for(self.seed, 1, index))


@dataclass
class EvenSplit(Algorithm):
    """Each block cut into ``outputs`` near-equal slices; output ``j`` joins every block's
    ``j``-th slice (``repartition(shuffle=True)``, as Ray does it)."""

    outputs: int

    def split(self, index: int, block: pa.Table) -> Sequence[pa.Table]:
        return shuffling.split_evenly(block, self.outputs)


@dataclass
class SliceByRows(Algorithm):
    """Cut blocks at fixed global row offsets: ``bounds[i]`` is where output ``i`` starts."""

    starts: list[int]  # the global row at which each input block starts
    bounds: list[int]  # output i has rows [bounds[i], bounds[i + 1])

    def split(self, index: int, block: pa.Table) -> Sequence[pa.Table]:
        first = self.starts[index]
        parts = []
        for low, high in zip(self.bounds, self.bounds[1:], strict=False):
            a, b = max(low - first, 0), min(high - first, block.num_rows)
            parts.append(block.slice(a, max(b - a, 0)))
        return parts


@dataclass
class SortByKey(Algorithm):
    key: Any
    bounds: list[Any]

    def split(self, index: int, block: pa.Table) -> Sequence[pa.Table]:
        return sorting.partition_block(block, self.key, self.bounds)

    def merge(self, index: int, parts: list[pa.Table]) -> pa.Table:
        return sorting.merge_sorted(parts, self.key)


@dataclass
class GroupAggregate(SortByKey):
    """Combines partial aggregates (made block by block as the input streamed in, see
    ``PartialAggregate``) by key range."""

    keys: list[str]
    aggs: list[Any]

    def merge(self, index: int, parts: list[pa.Table]) -> pa.Table:
        return grouping.finalize_groups(parts, self.keys, self.aggs)


@dataclass
class MapGroups(SortByKey):
    keys: list[str]
    fn: transforms.UserFn
    batch_format: str | None

    def merge(self, index: int, parts: list[pa.Table]) -> pa.Table:
        step = transforms.MapBatches(self.fn, None, self.batch_format, zero_copy_batch=False)
        groups = grouping.split_groups(super().merge(index, parts), self.keys)
        out = list(step(iter(groups)))
        return transforms.concat(out) if out else pa.table({})


def _split_all(algorithm: Algorithm, blocks: list[tuple[Any, Any]], outputs: int) -> list[list[Any]]:
    """Runs the split step; ``parts[i][j]`` is input ``i``'s part for output ``j``."""
    split = manta.remote(remote_calls.split_block).options(num_returns=outputs, name="Split")
    parts = []
    for index, (ref, _) in enumerate(blocks):
        out = split.remote(algorithm, index, ref)
        parts.append(out if outputs > 1 else [out])
    return parts


def shuffle(
    algorithm: Algorithm,
    blocks: list[tuple[Any, Any]],
    outputs: int,
    name: str,
    remote_args: dict[str, Any] | None = None,
    leading: list[Any] | None = None,
) -> list[RefBundle]:
    """Runs the split and merge steps; ``leading[j]`` (a block ref), if given, is merge
    ``j``'s first part. ``blocks`` is emptied once the splits are submitted, so that each
    input block is freed when its split has run, not when the whole shuffle has."""
    parts = _split_all(algorithm, blocks, outputs)
    blocks.clear()
    merge = manta.remote(remote_calls.merge_parts).options(num_returns=2, name=name, **(remote_args or {}))
    results = []
    for j in range(outputs):
        first = [] if leading is None else [leading[j]]
        results.append(merge.remote(algorithm, j, *first, *[row[j] for row in parts]))
    del parts, leading  # each part is freed when its merge has run
    metas = manta.get([meta for _, meta in results])
    return [RefBundle(((block, meta),)) for (block, _), meta in zip(results, metas, strict=True)]


def _sample_bounds(blocks: list[tuple[Any, Any]], key: Any, outputs: int) -> list[Any]:
    sample = manta.remote(remote_calls.call).options(name="SortSample")
    per_block = sorting.samples_per_block(outputs, len(blocks))
    samples = manta.get([sample.remote(_checked_sample, ref, key, per_block) for ref, _ in blocks])
    return list(sorting.boundaries(samples, key, outputs))


def _checked_sample(block: pa.Table, key: sorting.SortKey, n: int) -> pa.Table:
    """A block's sample of the key, once the key is checked against the block's columns
    (a plan whose schema was not known without running is checked here)."""
    key.validate_schema(block.schema)
    return sorting.sample_block(block, key, n)


def _all_blocks(bundles: list[RefBundle]) -> list[tuple[Any, Any]]:
    return [block for bundle in bundles for block in bundle.blocks]


def run(
    kind: str, args: dict[str, Any], inputs: list[list[RefBundle]], context: DataContext
) -> list[RefBundle]:
    blocks = _all_blocks(inputs[0])
    right = _all_blocks(inputs[1]) if kind == "zip" else []
    for bundles in inputs:
        bundles.clear()  # the refs live on in ``blocks`` only, until the splits are submitted
    if kind == "zip":
        return _zip(blocks, right)
    if not blocks:
        return []
    outputs = int(args.get("num_outputs") or len(blocks))
    if kind == "randomize_block_order":
        order = shuffling.rng_for(args.get("seed"), 2).permutation(len(blocks))
        return [RefBundle((blocks[i],)) for i in order]
    if kind == "random_shuffle":
        return shuffle(RandomShuffle(args.get("seed"), outputs), blocks, outputs, "RandomShuffle")
    if kind == "repartition":
        if args.get("shuffle"):
            return shuffle(EvenSplit(outputs), blocks, outputs, "Repartition")
        return shuffle(_even_slices(blocks, outputs), blocks, outputs, "Repartition")
    return _keyed(kind, args, blocks, outputs)


def _keyed(kind: str, args: dict[str, Any], blocks: list[tuple[Any, Any]], outputs: int) -> list[RefBundle]:
    key = args["key"]
    if kind == "sort":
        bounds = _sample_bounds(blocks, key, outputs)
        return shuffle(SortByKey(key, bounds), blocks, outputs, "Sort")
    bounds = _sample_bounds(blocks, key, outputs)
    if kind == "aggregate":
        algorithm: Algorithm = GroupAggregate(key, bounds, args["keys"], args["aggs"])
        return shuffle(algorithm, blocks, outputs, "Aggregate")
    if kind == "map_groups":
        algorithm = MapGroups(key, bounds, args["keys"], args["fn"], args["batch_format"])
        return shuffle(algorithm, blocks, outputs, "MapGroups", args.get("remote_args"))
    raise ValueError(f"unknown all-to-all operation {kind!r}")


def _even_slices(blocks: list[tuple[Any, Any]], outputs: int) -> SliceByRows:
    counts = [meta.num_rows or 0 for _, meta in blocks]
    starts = [int(x) for x in np.concatenate([[0], np.cumsum(counts)[:-1]])]
    total = sum(counts)
    bounds = [total * i // outputs for i in range(outputs + 1)]
    return SliceByRows(starts, bounds)


@dataclass
class ZipAlign(SliceByRows):
    """Cuts the right side's blocks to the left side's block boundaries; merge ``j`` puts
    the left block ``j`` (its first part) beside the right rows cut for it, a repeated
    column name getting a ``_1`` (``_2``, ...) suffix, as in Ray."""

    def merge(self, index: int, parts: list[pa.Table]) -> pa.Table:
        left, right = parts[0], transforms.concat(parts[1:])
        names = list(left.column_names)
        out = left
        for name in right.column_names:
            new = name
            suffix = 1
            while new in names:
                new = f"{name}_{suffix}"
                suffix += 1
            names.append(new)
            out = out.append_column(new, right.column(name))
        return out


def _zip(left: list[tuple[Any, Any]], right: list[tuple[Any, Any]]) -> list[RefBundle]:
    left_rows = [meta.num_rows or 0 for _, meta in left]
    right_rows = [meta.num_rows or 0 for _, meta in right]
    if sum(left_rows) != sum(right_rows):
        raise ValueError(
            f"Cannot zip datasets of different number of rows: {sum(left_rows)}, {sum(right_rows)}"
        )
    if not left:
        return []
    bounds = [int(x) for x in np.concatenate([[0], np.cumsum(left_rows)])]
    starts = [int(x) for x in np.concatenate([[0], np.cumsum(right_rows)[:-1]])] if right else []
    leading = [ref for ref, _ in left]
    left.clear()
    return shuffle(ZipAlign(starts, bounds), right, len(leading), "Zip", leading=leading)


class AllToAllOperator(Operator):
    def __init__(self, stage: Stage, inputs: list[Operator], context: DataContext) -> None:
        super().__init__(stage, inputs, context)
        self._collected: list[list[RefBundle]] = [[] for _ in inputs]
        self._ran = False

    def add_input(self, bundle: RefBundle, index: int) -> None:
        self._collected[index].append(bundle)

    def has_work(self) -> bool:
        return all(self.inputs_done) and not self._ran and not self.stopped

    def launch_one(self) -> None:
        self.stats.started_at = time.monotonic()
        source = self.stage.source
        # Handed over, so that the shuffle can let input blocks go as their splits run.
        collected, self._collected = self._collected, [[] for _ in self.inputs]
        for bundle in run(source.kind, source.args, collected, self.context):
            self.outputs.append(bundle)
            for _, meta in bundle.blocks:
                self.stats.add_block(meta.num_rows or 0, meta.size_bytes or 0, meta.exec_stats)
        self.stats.tasks_done += 1
        self._ran = True

    def held_bytes(self) -> int:
        return super().held_bytes() + sum(b.size_bytes for held in self._collected for b in held)

    def finished(self) -> bool:
        return self._ran or self.stopped
