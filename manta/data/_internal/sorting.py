"""Distributed sort as sample, split and merge (``Dataset.sort``).

1. Each input block gives a few sampled key rows (:func:`sample_block`).
2. The driver sorts all samples and picks ``num_partitions - 1`` split points
   (:func:`boundaries`).
3. Each block is sorted and cut at those points (:func:`partition_block`): part ``j``
   holds the rows after split point ``j - 1`` and up to and including split point ``j``.
4. Part ``j`` of every block is merged into output block ``j`` (:func:`merge_sorted`).

Every comparison, in the blocks and against split points, is made by Arrow's sort, so
the order is one total order: ascending or descending per column, NaN after every
number, and nulls last in both directions (as Ray's Arrow blocks sort). Rows equal to a
split point all go to one side, so all-equal keys put every row in one part; the other
parts are then empty, which is correct.
"""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from manta.data._internal.shuffling import concat_parts

_MARK = "__manta_sort_boundary_mark"
_ORDINAL = "__manta_sort_boundary_ordinal"
SAMPLES_PER_PARTITION = 10


class SortKey:
    """The sort columns and a direction per column, from ``Dataset.sort``'s arguments.

    Args:
        key: A column name, a list of them, or ``None`` for no columns.
        descending: One direction for all columns or one per column.

    Raises:
        ValueError: if ``key`` is not a string or list of strings, or ``descending``
            is a list of another length.
    """

    def __init__(self, key: str | list[str] | None = None, descending: bool | list[bool] = False) -> None:
        columns = [] if key is None else [key] if isinstance(key, str) else key
        if not (isinstance(columns, list) and all(isinstance(c, str) for c in columns)):
            raise ValueError(f"Key must be a string or a list of strings, but got {key}.")
        if isinstance(descending, bool):
            directions = [descending] * len(columns)
        elif isinstance(descending, list) and len(descending) == len(columns):
            directions = [bool(d) for d in descending]
        else:
            raise ValueError("Length of `descending` does not match the length of the key.")
        self.columns: list[str] = list(columns)
        self.descending: list[bool] = directions

    def __repr__(self) -> str:
        return f"SortKey(key={self.columns!r}, descending={self.descending!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SortKey) and (self.columns, self.descending) == (
            other.columns,
            other.descending,
        )

    def __hash__(self) -> int:
        return hash((tuple(self.columns), tuple(self.descending)))

    def validate_schema(self, schema: pa.Schema | None) -> None:
        """Check the columns exist; ``None`` or an empty schema (unknown) passes.

        Raises:
            ValueError: naming the missing column and the columns there are.
        """
        if schema is None or len(schema.names) == 0:
            return
        for column in self.columns:
            if column not in schema.names:
                raise ValueError(
                    f"You specified the column '{column}', but there's no such column in the "
                    f"dataset. The dataset has columns: {schema.names}"
                )

    def to_arrow_sort_args(self) -> list[tuple[str, str]]:
        return [
            (c, "descending" if d else "ascending")
            for c, d in zip(self.columns, self.descending, strict=True)
        ]


def sort_table(table: pa.Table, key: SortKey) -> pa.Table:
    """``table`` sorted by ``key`` (stable: equal keys keep their order)."""
    if table.num_rows <= 1 or not key.columns:
        return table
    return table.take(pc.sort_indices(table, sort_keys=key.to_arrow_sort_args()))


def samples_per_block(num_partitions: int, num_blocks: int) -> int:
    """How many rows :func:`sample_block` should take from each of ``num_blocks`` blocks
    to pick ``num_partitions`` ranges well: ten per range in all, at least one a block."""
    return max(1, SAMPLES_PER_PARTITION * num_partitions // max(1, num_blocks))


def sample_block(table: pa.Table, key: SortKey, n: int, rng: np.random.Generator | None = None) -> pa.Table:
    """The key columns of ``min(n, rows)`` rows of ``table``: drawn without replacement by
    ``rng``, or evenly spaced (deterministic) when ``rng`` is ``None``."""
    keys = table.select(key.columns)
    count = min(n, table.num_rows)
    if count <= 0:
        return keys.slice(0, 0)
    if rng is not None:
        picks = np.sort(rng.choice(table.num_rows, size=count, replace=False))
    else:
        picks = (np.arange(count) * table.num_rows) // count
    return keys.take(pa.array(picks, type=pa.int64()))


def boundaries(samples: list[pa.Table], key: SortKey, num_partitions: int) -> list[tuple]:
    """``num_partitions - 1`` split points (tuples of key values, in sort order) that
    cut the sampled rows into ranges of about equal size. All-``None`` points when there
    are no samples (an empty dataset).

    Raises:
        ValueError: if ``num_partitions < 1``.
    """
    if num_partitions < 1:
        raise ValueError(f"The number of partitions must be at least 1, got {num_partitions}.")
    pooled = concat_parts([s.select(key.columns) for s in samples])
    if pooled.num_rows == 0:
        return [(None,) * len(key.columns)] * (num_partitions - 1)
    ordered = sort_table(pooled, key)
    columns = [ordered.column(c).to_pylist() for c in key.columns]
    last = ordered.num_rows - 1
    picks = [int(q * last) for q in np.linspace(0, 1, num_partitions + 1)[1:-1]]
    return [tuple(column[i] for column in columns) for i in picks]


def _boundary_table(table: pa.Table, key: SortKey, points: list[tuple]) -> pa.Table:
    arrays = []
    for position, column in enumerate(key.columns):
        values = [point[position] for point in points]
        try:
            arrays.append(pa.array(values, type=table.schema.field(column).type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
            # The block's column is narrower than the points (all-null here, say):
            # let concat's promotion find the common type.
            arrays.append(pa.array(values))
    return pa.table(arrays, names=key.columns)


def partition_block(table: pa.Table, key: SortKey, boundaries: list[tuple]) -> list[pa.Table]:
    """Sort ``table`` and cut it at the split points into ``len(boundaries) + 1`` sorted
    parts; part ``j`` holds the rows ordered after point ``j - 1`` and not after point ``j``.

    Raises:
        ValueError: if a key column is missing.
    """
    key.validate_schema(table.schema)
    ordered = sort_table(table, key)
    if not boundaries:
        return [ordered]
    rows = ordered.select(key.columns)
    points = _boundary_table(rows, key, boundaries)
    mark_rows = {_MARK: np.zeros(rows.num_rows, np.int8), _ORDINAL: np.zeros(rows.num_rows, np.int64)}
    mark_points = {_MARK: np.ones(points.num_rows, np.int8), _ORDINAL: np.arange(points.num_rows)}
    both = pa.concat_tables(
        [
            pa.table({**{c: rows.column(c) for c in key.columns}, **mark_rows}),
            pa.table({**{c: points.column(c) for c in key.columns}, **mark_points}),
        ],
        promote_options="permissive",
    )
    # A point sorts after the rows equal to it, so it counts the rows not after it.
    order = pc.sort_indices(
        both, sort_keys=[*key.to_arrow_sort_args(), (_MARK, "ascending"), (_ORDINAL, "ascending")]
    )
    marks = np.asarray(both.column(_MARK).take(order).to_numpy())
    cuts = np.flatnonzero(marks == 1) - np.arange(points.num_rows)
    edges = [0, *cuts.tolist(), ordered.num_rows]
    return [ordered.slice(start, end - start) for start, end in itertools.pairwise(edges)]


def merge_sorted(parts: list[pa.Table], key: SortKey) -> pa.Table:
    """One table sorted by ``key`` from parts that are each sorted by it."""
    return sort_table(concat_parts(parts), key)
