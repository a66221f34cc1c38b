"""Moving rows between blocks: random and even splits, in-block shuffles, and seeding.

``random_shuffle(seed=...)`` is reproducible only if every task derives its randomness
from the user's seed and its own position, never from shared global state:
:func:`rng_for` gives each (seed, task index, ...) its own independent generator.
"""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa


def rng_for(seed: int | None, *stream: int) -> np.random.Generator:
    """A generator for one task: the same ``(seed, *stream)`` always gives the same
    numbers and different streams give independent ones; ``seed=None`` gives fresh OS
    randomness on every call.

    Raises:
        ValueError: if ``seed`` or a stream index is negative.
    """
    if seed is None:
        return np.random.default_rng()
    if seed < 0 or any(s < 0 for s in stream):
        raise ValueError(f"Seeds must be non-negative integers, got seed={seed} stream={stream}.")
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(stream)))


def split_by_index(table: pa.Table, part_of_row: np.ndarray, n: int) -> list[pa.Table]:
    """Split ``table`` into ``n`` parts, row ``i`` going to part ``part_of_row[i]``; rows
    keep their relative order within a part."""
    order = np.argsort(part_of_row, kind="stable")
    grouped = table.take(pa.array(order, type=pa.int64()))
    ends = np.cumsum(np.bincount(part_of_row, minlength=n))
    starts = np.concatenate([[0], ends[:-1]])
    return [grouped.slice(int(start), int(end - start)) for start, end in zip(starts, ends, strict=True)]


def split_randomly(table: pa.Table, n: int, rng: np.random.Generator) -> list[pa.Table]:
    """Send each row of ``table`` to one of ``n`` parts chosen uniformly at random.

    Raises:
        ValueError: if ``n < 1``.
    """
    if n < 1:
        raise ValueError(f"The number of partitions must be at least 1, got {n}.")
    return split_by_index(table, rng.integers(0, n, size=table.num_rows), n)


def split_evenly(table: pa.Table, n: int) -> list[pa.Table]:
    """``n`` contiguous slices of ``table`` whose sizes differ by at most one row, as the
    map side of ``repartition(n, shuffle=True)`` cuts each block.

    Raises:
        ValueError: if ``n < 1``.
    """
    if n < 1:
        raise ValueError(f"The number of partitions must be at least 1, got {n}.")
    bounds = [table.num_rows * i // n for i in range(n + 1)]
    return [table.slice(start, end - start) for start, end in itertools.pairwise(bounds)]


def shuffle_rows(table: pa.Table, rng: np.random.Generator) -> pa.Table:
    """``table`` with its rows in a uniformly random order."""
    return table.take(pa.array(rng.permutation(table.num_rows), type=pa.int64()))


def concat_parts(parts: list[pa.Table]) -> pa.Table:
    """The rows of ``parts`` in order as one table, the reduce side of a shuffle. Column
    types that differ between parts are unified (a part whose column is all null, say);
    empty parts only contribute a schema when every part is empty.

    Raises:
        pyarrow.ArrowInvalid: if two parts' schemas cannot be unified.
    """
    non_empty = [part for part in parts if part.num_rows > 0]
    if not non_empty:
        return parts[0] if parts else pa.table({})
    if len(non_empty) == 1:
        return non_empty[0]
    return pa.concat_tables(non_empty, promote_options="permissive")
