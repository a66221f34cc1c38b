"""Aggregations for ``Dataset.aggregate`` and ``GroupedData.aggregate``, as in ``ray.data.aggregate``.

An aggregation is a monoid over blocks: ``init(key)`` makes a group's accumulator,
``accumulate_block(init(key), block)`` the accumulator of one block of the group's rows,
``merge`` combines accumulators of different blocks, and ``finalize`` turns the last one
into the output value. Instances travel to remote tasks, so everything here pickles.

:class:`AggregateFnV2` adds Ray's null protocol on top: with ``ignore_nulls=True`` a
``None`` accumulator means "no values seen yet" and is dropped by ``merge``; with
``ignore_nulls=False`` a ``None`` (or NaN) accumulator means "a null was seen" and wins
every ``merge``, so the result is null.

Differences from Ray: ``Unique`` keeps values in first-seen order and ``Unique`` with
``encode_lists=ListEncodingMode.HASH`` uses Manta's stable 64-bit hash, so the numbers
differ from Ray's.
"""

from __future__ import annotations

import abc
import enum
import math
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from manta.data._internal.hashing import hash_columns
from manta.data._internal.tensors import column_to_pylist

__all__ = [
    "AbsMax",
    "AggregateFn",
    "AggregateFnV2",
    "Count",
    "Max",
    "Mean",
    "Min",
    "Quantile",
    "Std",
    "Sum",
    "Unique",
]

AccumulatorType = TypeVar("AccumulatorType")
AggOutputType = TypeVar("AggOutputType")


def _is_null(value: Any) -> bool:
    """``None`` or NaN, Ray's two spellings of a missing value (hot: called per group)."""
    if value is None:
        return True
    if type(value) is float:
        return value != value
    return isinstance(value, np.floating) and bool(np.isnan(value))


def _block_rows(block: pa.Table) -> Iterator[dict[str, Any]]:
    columns = [column_to_pylist(block.column(i)) for i in range(block.num_columns)]
    for values in zip(*columns, strict=True):
        yield dict(zip(block.column_names, values, strict=True))


class _RowsToBlock:
    """``accumulate_block`` made from a user's ``accumulate_row`` (a class, so it pickles)."""

    def __init__(self, accumulate_row: Callable[[Any, dict[str, Any]], Any]) -> None:
        self._accumulate_row = accumulate_row

    def __call__(self, accumulator: Any, block: pa.Table) -> Any:
        for row in _block_rows(block):
            accumulator = self._accumulate_row(accumulator, row)
        return accumulator


def _identity(value: Any) -> Any:
    return value


class AggregateFn:
    """A custom aggregation from plain functions (Ray's older API; prefer :class:`AggregateFnV2`).

    Args:
        init: ``init(key) -> accumulator`` for a new group; ``key`` is the group's key
            value (a tuple of values for several key columns, ``()`` without grouping).
        merge: ``merge(a, b) -> accumulator`` combining accumulators from different blocks.
        name: The output column's name.
        accumulate_row: ``accumulate_row(a, row) -> accumulator``; ``row`` is a ``dict``.
        accumulate_block: ``accumulate_block(a, block) -> accumulator`` over a
            ``pyarrow.Table``. Give exactly one of ``accumulate_row`` and ``accumulate_block``.
        finalize: ``finalize(a) -> value``; the accumulator itself when omitted.

    Raises:
        ValueError: if not exactly one of ``accumulate_row``/``accumulate_block`` is given.
        TypeError: if ``name`` is not a string.
    """

    def __init__(
        self,
        init: Callable[[Any], Any],
        merge: Callable[[Any, Any], Any],
        name: str,
        accumulate_row: Callable[[Any, dict[str, Any]], Any] | None = None,
        accumulate_block: Callable[[Any, pa.Table], Any] | None = None,
        finalize: Callable[[Any], Any] | None = None,
    ) -> None:
        if (accumulate_row is None) == (accumulate_block is None):
            raise ValueError("Exactly one of accumulate_row or accumulate_block must be provided.")
        if not isinstance(name, str):
            raise TypeError("`name` must be provided.")
        self.name = name
        self.init = init
        self.merge = merge
        self.accumulate_block: Callable[[Any, pa.Table], Any] = (
            accumulate_block if accumulate_block is not None else _RowsToBlock(accumulate_row)  # type: ignore[arg-type]
        )
        self.finalize: Callable[[Any], Any] = finalize if finalize is not None else _identity

    def _validate(self, schema: pa.Schema | None) -> None:
        """Raise ``ValueError`` if this aggregation cannot run on ``schema``; a plain
        ``AggregateFn`` reads no declared column, so it accepts any."""

    def _grouped_states(self, table: pa.Table, offsets: list[int]) -> list[Any] | None:
        """The accumulators of the non-empty groups ``table[offsets[i]:offsets[i + 1]]``
        computed in one vectorised pass, or ``None`` to accumulate group by group."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class _NullSafeInit:
    def __init__(self, zero_factory: Callable[[], Any], ignore_nulls: bool) -> None:
        self._zero_factory = zero_factory
        self._ignore_nulls = ignore_nulls

    def __call__(self, key: Any) -> Any:
        # With ignore_nulls a None accumulator stands for "empty"; without, None would
        # mean "saw a null", so the empty state must be the real zero.
        return None if self._ignore_nulls else self._zero_factory()


class _NullSafeMerge:
    def __init__(self, combine: Callable[[Any, Any], Any], ignore_nulls: bool) -> None:
        self._combine = combine
        self._ignore_nulls = ignore_nulls

    def __call__(self, current: Any, new: Any) -> Any:
        if self._ignore_nulls:
            if _is_null(current):
                return new
            if _is_null(new):
                return current
        else:
            if _is_null(new):
                return new
            if _is_null(current):
                return current
        return self._combine(current, new)


class _NullSafeAccumulate:
    """The block's own accumulator; the one passed in is the group's fresh ``init`` and is
    dropped, as in Ray, so a zero such as ``Min``'s ``inf`` never meets a string."""

    def __init__(self, aggregate_block: Callable[[pa.Table], Any], ignore_nulls: bool) -> None:
        self._aggregate_block = aggregate_block
        self._ignore_nulls = ignore_nulls

    def __call__(self, accumulator: Any, block: pa.Table) -> Any:
        partial = self._aggregate_block(block)
        return None if self._ignore_nulls and _is_null(partial) else partial


class _NullSafeFinalize:
    def __init__(self, finalize: Callable[[Any], Any]) -> None:
        self._finalize = finalize

    def __call__(self, accumulator: Any) -> Any:
        return accumulator if _is_null(accumulator) else self._finalize(accumulator)


def _missing_column_error(column: str, names: list[str]) -> ValueError:
    return ValueError(
        f"You specified the column '{column}', but there's no such column in the dataset. "
        f"The dataset has columns: {names}"
    )


class AggregateFnV2(AggregateFn, abc.ABC, Generic[AccumulatorType, AggOutputType]):
    """Base class of vectorised aggregations (Ray 2.60's API).

    Subclasses implement ``aggregate_block(block) -> accumulator`` and
    ``combine(a, b) -> accumulator``, and may override ``finalize(a) -> value``. After
    construction, ``init``/``merge``/``accumulate_block``/``finalize`` are the null-safe
    wrappers described in the module docstring, as in Ray.

    Args:
        name: Output column name, e.g. ``"sum(x)"``.
        zero_factory: Makes the identity accumulator.
        on: The column aggregated, or ``None`` for whole rows.
        ignore_nulls: Skip nulls (``True``) or let any null make the result null.

    Raises:
        ValueError: if ``name`` is empty.
    """

    def __init__(
        self,
        name: str,
        zero_factory: Callable[[], AccumulatorType],
        *,
        on: str | None,
        ignore_nulls: bool,
    ) -> None:
        if not name:
            raise ValueError(f"Non-empty string has to be provided as name (got {name})")
        self._target_col_name = on
        self._ignore_nulls = ignore_nulls
        self._agg_name = name.split("(", 1)[0] if "(" in name and name.endswith(")") else name
        super().__init__(
            init=_NullSafeInit(zero_factory, ignore_nulls),
            merge=_NullSafeMerge(self.combine, ignore_nulls),
            name=name,
            accumulate_block=_NullSafeAccumulate(self.aggregate_block, ignore_nulls),
            finalize=_NullSafeFinalize(self.finalize),
        )

    def get_target_column(self) -> str | None:
        return self._target_col_name

    def get_agg_name(self) -> str:
        """The aggregation's kind, e.g. ``"sum"`` for ``"sum(x)"``."""
        return self._agg_name

    @abc.abstractmethod
    def combine(self, current_accumulator: AccumulatorType, new: AccumulatorType) -> AccumulatorType:
        """Merge two non-null accumulators."""

    @abc.abstractmethod
    def aggregate_block(self, block: pa.Table) -> AccumulatorType | None:
        """The accumulator of one block of a group's rows."""

    def finalize(self, accumulator: AccumulatorType) -> AggOutputType | None:  # type: ignore[override]
        """The output value of a non-null accumulator (the accumulator itself by default)."""
        return accumulator  # type: ignore[return-value]

    def _validate(self, schema: pa.Schema | None) -> None:
        if self._target_col_name and schema is not None and len(schema.names) > 0:
            if self._target_col_name not in schema.names:
                raise _missing_column_error(self._target_col_name, list(schema.names))

    def _grouped_states(self, table: pa.Table, offsets: list[int]) -> list[Any] | None:
        partials = self._grouped_partials(table, offsets)
        if partials is None or not self._ignore_nulls:
            return partials
        return [None if _is_null(p) else p for p in partials]

    def _grouped_partials(self, table: pa.Table, offsets: list[int]) -> list[Any] | None:
        """What ``aggregate_block`` gives for each group, for all groups at once; ``None``
        where a subclass has no vectorised form."""
        return None

    def _column(self, block: pa.Table) -> pa.ChunkedArray:
        column = self._target_col_name
        if column is None:
            raise ValueError(f"Provided `on` value has to be non-null (got '{column}')")
        if column not in block.column_names:
            raise ValueError(f"Referencing column '{column}' not present in the schema: {block.schema}")
        return block.column(column)


def _sizes(offsets: list[int]) -> np.ndarray:
    return np.asarray(offsets[1:], dtype=np.int64) - np.asarray(offsets[:-1], dtype=np.int64)


def _per_group(
    column: pa.ChunkedArray | pa.Array, offsets: list[int], function: str, options: Any
) -> list[Any]:
    """Arrow's hash aggregation ``function`` over each run ``offsets[i]:offsets[i + 1]``."""
    sizes = _sizes(offsets)
    ids = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    grouped = (
        pa.table({"g": ids, "v": column})
        .group_by("g", use_threads=False)
        .aggregate([("v", function, options)])
    )
    return grouped.sort_by("g").column(f"v_{function}").to_pylist()


def _reduction(ignore_nulls: bool) -> pc.ScalarAggregateOptions:
    return pc.ScalarAggregateOptions(skip_nulls=ignore_nulls, min_count=1)


def _count_mode(ignore_nulls: bool) -> pc.CountOptions:
    return pc.CountOptions(mode="only_valid" if ignore_nulls else "all")


def _zero() -> int:
    return 0


def _positive_infinity() -> float:
    return math.inf


def _negative_infinity() -> float:
    return -math.inf


class Count(AggregateFnV2[int, int]):
    """Number of rows (``on=None``) or of values in column ``on``; output ``count()`` or
    ``count(on)``. Unlike the other built-ins, ``ignore_nulls`` defaults to ``False``
    (nulls are counted)."""

    def __init__(self, on: str | None = None, ignore_nulls: bool = False, alias_name: str | None = None):
        super().__init__(alias_name or f"count({on or ''})", _zero, on=on, ignore_nulls=ignore_nulls)

    def aggregate_block(self, block: pa.Table) -> int:
        if self._target_col_name is None:
            return block.num_rows
        mode = "only_valid" if self._ignore_nulls else "all"
        return int(pc.count(self._column(block), mode=mode).as_py())

    def _grouped_partials(self, table: pa.Table, offsets: list[int]) -> list[Any]:
        if self._target_col_name is None:
            return _sizes(offsets).tolist()
        return _per_group(self._column(table), offsets, "count", _count_mode(self._ignore_nulls))

    def combine(self, current_accumulator: int, new: int) -> int:
        return current_accumulator + new


class Sum(AggregateFnV2[Any, Any]):
    """Sum of column ``on``; output ``sum(on)``. ``None`` where a group has no non-null
    value (``ignore_nulls=True``) or has any null (``ignore_nulls=False``)."""

    def __init__(self, on: str | None = None, ignore_nulls: bool = True, alias_name: str | None = None):
        super().__init__(alias_name or f"sum({on})", _zero, on=on, ignore_nulls=ignore_nulls)

    def aggregate_block(self, block: pa.Table) -> Any:
        return pc.sum(self._column(block), skip_nulls=self._ignore_nulls).as_py()

    def _grouped_partials(self, table: pa.Table, offsets: list[int]) -> list[Any]:
        return _per_group(self._column(table), offsets, "sum", _reduction(self._ignore_nulls))

    def combine(self, current_accumulator: Any, new: Any) -> Any:
        return current_accumulator + new


class Min(AggregateFnV2[Any, Any]):
    """Minimum of column ``on`` (any orderable type, strings included); output ``min(on)``."""

    def __init__(
        self,
        on: str | None = None,
        ignore_nulls: bool = True,
        alias_name: str | None = None,
        zero_factory: Callable[[], Any] = _positive_infinity,
    ):
        super().__init__(alias_name or f"min({on})", zero_factory, on=on, ignore_nulls=ignore_nulls)

    def aggregate_block(self, block: pa.Table) -> Any:
        return pc.min(self._column(block), skip_nulls=self._ignore_nulls).as_py()

    def _grouped_partials(self, table: pa.Table, offsets: list[int]) -> list[Any]:
        return _per_group(self._column(table), offsets, "min", _reduction(self._ignore_nulls))

    def combine(self, current_accumulator: Any, new: Any) -> Any:
        return min(current_accumulator, new)


class Max(AggregateFnV2[Any, Any]):
    """Maximum of column ``on``; output ``max(on)``."""

    def __init__(
        self,
        on: str | None = None,
        ignore_nulls: bool = True,
        alias_name: str | None = None,
        zero_factory: Callable[[], Any] = _negative_infinity,
    ):
        super().__init__(alias_name or f"max({on})", zero_factory, on=on, ignore_nulls=ignore_nulls)

    def aggregate_block(self, block: pa.Table) -> Any:
        return pc.max(self._column(block), skip_nulls=self._ignore_nulls).as_py()

    def _grouped_partials(self, table: pa.Table, offsets: list[int]) -> list[Any]:
        return _per_group(self._column(table), offsets, "max", _reduction(self._ignore_nulls))

    def combine(self, current_accumulator: Any, new: Any) -> Any:
        return max(current_accumulator, new)


def _sum_and_count(agg: AggregateFnV2[Any, Any], block: pa.Table) -> tuple[Any, int] | None:
    """(sum, count) of a block's values; ``None`` for a block with none, and a null sum
    where a null poisons it."""
    column = agg._column(block)
    count = int(pc.count(column, mode="only_valid" if agg._ignore_nulls else "all").as_py())
    if count == 0:
        return None
    return pc.sum(column, skip_nulls=agg._ignore_nulls).as_py(), count


def _grouped_sum_count(
    agg: AggregateFnV2[Any, Any], table: pa.Table, offsets: list[int]
) -> list[tuple[Any, int]]:
    """Per group, what :func:`_sum_and_count` gives for its block."""
    column = agg._column(table)
    sums = _per_group(column, offsets, "sum", _reduction(agg._ignore_nulls))
    counts = _per_group(column, offsets, "count", _count_mode(agg._ignore_nulls))
    return list(zip(sums, counts, strict=True))


def _zero_pair() -> list[Any]:
    return [0, 0]


class Mean(AggregateFnV2[list[Any], float]):
    """Arithmetic mean of column ``on``; output ``mean(on)`` (a float)."""

    def __init__(self, on: str | None = None, ignore_nulls: bool = True, alias_name: str | None = None):
        super().__init__(alias_name or f"mean({on})", _zero_pair, on=on, ignore_nulls=ignore_nulls)

    def aggregate_block(self, block: pa.Table) -> Any:
        totals = _sum_and_count(self, block)
        if totals is None or _is_null(totals[0]):
            # A NaN sum stays NaN so that ignore_nulls=False reports NaN, as Ray does.
            return None if totals is None else totals[0]
        # All floats, so the state is an exact Arrow list<double> rather than a pickle.
        return [float(totals[0]), float(totals[1])]

    def _grouped_partials(self, table: pa.Table, offsets: list[int]) -> list[Any]:
        return [
            None if count == 0 else total if _is_null(total) else [float(total), float(count)]
            for total, count in _grouped_sum_count(self, table, offsets)
        ]

    def combine(self, current_accumulator: list[Any], new: list[Any]) -> list[Any]:
        return [current_accumulator[0] + new[0], current_accumulator[1] + new[1]]

    def finalize(self, accumulator: list[Any]) -> float:
        if accumulator[1] == 0:
            return math.nan
        return float(accumulator[0] / accumulator[1])


def _zero_triple() -> list[Any]:
    return [0, 0, 0]


class Std(AggregateFnV2[list[Any], float]):
    """Standard deviation of column ``on`` with ``N - ddof`` in the divisor (``ddof=1``,
    the sample deviation, by default); output ``std(on)``. NaN where ``N <= ddof``.

    The accumulator is ``[M2, mean, count]`` merged with Chan et al.'s parallel update,
    which is numerically stable in one pass; results can differ from numpy's two-pass
    figure in the last digits."""

    def __init__(
        self,
        on: str | None = None,
        ddof: int = 1,
        ignore_nulls: bool = True,
        alias_name: str | None = None,
    ):
        super().__init__(alias_name or f"std({on})", _zero_triple, on=on, ignore_nulls=ignore_nulls)
        self._ddof = ddof

    def aggregate_block(self, block: pa.Table) -> Any:
        totals = _sum_and_count(self, block)
        if totals is None or _is_null(totals[0]):
            return None if totals is None else totals[0]
        total, count = totals
        mean = total / count
        squares = pc.power(pc.subtract(pc.cast(self._column(block), pa.float64()), mean), 2)
        return [float(pc.sum(squares, skip_nulls=self._ignore_nulls).as_py()), float(mean), float(count)]

    def _grouped_partials(self, table: pa.Table, offsets: list[int]) -> list[Any]:
        totals = _grouped_sum_count(self, table, offsets)
        usable = [count > 0 and not _is_null(total) for total, count in totals]
        means = [total / count if ok else 0.0 for (total, count), ok in zip(totals, usable, strict=True)]
        row_means = pa.array(np.repeat(np.asarray(means, dtype=np.float64), _sizes(offsets)))
        column = pc.cast(self._column(table), pa.float64()).combine_chunks()
        squares = pc.power(pc.subtract(column, row_means), 2)
        m2s = _per_group(squares, offsets, "sum", _reduction(self._ignore_nulls))
        return [
            [float(m2), float(mean), float(count)] if ok else (None if count == 0 else total)
            for (total, count), ok, mean, m2 in zip(totals, usable, means, m2s, strict=True)
        ]

    def combine(self, current_accumulator: list[Any], new: list[Any]) -> list[Any]:
        m2_a, mean_a, count_a = current_accumulator
        m2_b, mean_b, count_b = new
        count = count_a + count_b
        if count == 0:
            return [0, 0, 0]
        delta = mean_b - mean_a
        # Weighted mean rather than mean_a + delta * count_b / count: it keeps agreement
        # with pandas to the last digit on typical data.
        mean = (mean_a * count_a + mean_b * count_b) / count
        return [m2_a + m2_b + delta * delta * count_a * count_b / count, mean, count]

    def finalize(self, accumulator: list[Any]) -> float:
        m2, _, count = accumulator
        if count - self._ddof <= 0:
            return math.nan
        return math.sqrt(m2 / (count - self._ddof))


class AbsMax(AggregateFnV2[Any, Any]):
    """Largest absolute value of column ``on``; output ``abs_max(on)``.

    Raises:
        ValueError: if ``on`` is not a column name.
    """

    def __init__(
        self,
        on: str | None = None,
        ignore_nulls: bool = True,
        alias_name: str | None = None,
        zero_factory: Callable[[], Any] = _zero,
    ):
        if on is None or not isinstance(on, str):
            raise ValueError(f"Column to aggregate on has to be provided (got {on})")
        super().__init__(alias_name or f"abs_max({on})", zero_factory, on=on, ignore_nulls=ignore_nulls)

    def aggregate_block(self, block: pa.Table) -> Any:
        column = self._column(block)
        high = pc.max(column, skip_nulls=self._ignore_nulls).as_py()
        low = pc.min(column, skip_nulls=self._ignore_nulls).as_py()
        if _is_null(high) or _is_null(low):
            return None
        return max(abs(high), abs(low))

    def combine(self, current_accumulator: Any, new: Any) -> Any:
        return max(current_accumulator, new)


def _empty_list() -> list[Any]:
    return []


class Quantile(AggregateFnV2[list[Any], Any]):
    """The ``q`` quantile (``0 <= q <= 1``, linear interpolation) of column ``on``;
    output ``quantile(on)``. Holds a group's values in memory, as Ray does."""

    def __init__(
        self,
        on: str | None = None,
        q: float = 0.5,
        ignore_nulls: bool = True,
        alias_name: str | None = None,
    ):
        super().__init__(alias_name or f"quantile({on})", _empty_list, on=on, ignore_nulls=ignore_nulls)
        self._q = q

    def aggregate_block(self, block: pa.Table) -> list[Any]:
        return self._column(block).to_pylist()

    def combine(self, current_accumulator: list[Any], new: list[Any]) -> list[Any]:
        return [*current_accumulator, *new]

    def finalize(self, accumulator: list[Any]) -> Any:
        if not accumulator:
            return None
        values = pa.array(accumulator)
        if pa.types.is_null(values.type):
            return None
        return pc.quantile(values, q=self._q, skip_nulls=self._ignore_nulls)[0].as_py()


class Unique(AggregateFnV2[list[Any], list[Any]]):
    """The distinct values of column ``on`` as a list, in first-seen order; output
    ``unique(on)``. Nulls are kept unless ``ignore_nulls=True`` (default ``False``).

    Args:
        encode_lists: For list columns, ``True`` or ``ListEncodingMode.FLATTEN`` collects
            the distinct elements, ``ListEncodingMode.HASH`` distinct 64-bit hashes of
            the lists (Manta's stable hash, not Ray's); otherwise whole lists (as tuples).
    """

    class ListEncodingMode(str, enum.Enum):
        FLATTEN = "FLATTEN"
        HASH = "HASH"

    def __init__(
        self,
        on: str | None = None,
        ignore_nulls: bool = False,
        alias_name: str | None = None,
        encode_lists: bool | Unique.ListEncodingMode | None = None,
    ):
        super().__init__(alias_name or f"unique({on})", _empty_list, on=on, ignore_nulls=ignore_nulls)
        self._list_encoding_mode: Unique.ListEncodingMode | None
        if isinstance(encode_lists, Unique.ListEncodingMode):
            self._list_encoding_mode = encode_lists
        elif encode_lists is True:
            self._list_encoding_mode = Unique.ListEncodingMode.FLATTEN
        else:
            self._list_encoding_mode = None

    def aggregate_block(self, block: pa.Table) -> list[Any]:
        column: pa.ChunkedArray | pa.Array = self._column(block)
        is_list = pa.types.is_list(column.type) or pa.types.is_large_list(column.type)
        if is_list and self._list_encoding_mode is Unique.ListEncodingMode.FLATTEN:
            column = pc.list_flatten(column)
        elif is_list and self._list_encoding_mode is Unique.ListEncodingMode.HASH:
            hashes = hash_columns(pa.table({"v": column}), ["v"])
            column = pa.array(hashes, mask=np.asarray(column.is_null()))
        if self._ignore_nulls:
            column = pc.drop_null(column)
        return _distinct(column_to_pylist(column))

    def combine(self, current_accumulator: list[Any], new: list[Any]) -> list[Any]:
        return _distinct([*current_accumulator, *new])


_NAN = object()  # stands for every NaN, which never equals itself


def _distinct(values: list[Any]) -> list[Any]:
    """Distinct values in first-seen order; NaNs count as one value and lists as tuples."""
    seen: set[Any] = set()
    unhashable: list[Any] = []
    out: list[Any] = []
    for value in values:
        if isinstance(value, list):
            value = tuple(value)
        marker = _NAN if _is_null(value) and value is not None else value
        try:
            if marker in seen:
                continue
            seen.add(marker)
        except TypeError:  # dicts from struct columns: compare by equality instead
            if any(value == other for other in unhashable):
                continue
            unhashable.append(value)
        out.append(value)
    return out
