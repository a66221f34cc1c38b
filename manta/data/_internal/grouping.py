"""Group-by algorithms on blocks: partial aggregation, combining partials, and groups.

``groupby(keys).aggregate(*aggs)`` runs as map-combine-reduce:

* map, per input block: :func:`aggregate_partial` gives one row per group holding the
  key values and each aggregation's accumulator;
* the partial rows are routed so that equal keys meet (``hash_partition`` or range
  ``partition_block`` on the key columns; the accumulator columns travel along);
* reduce, per partition: :func:`finalize_groups` merges accumulators of equal keys and
  finalizes them.

Groups come out sorted by key ascending with null keys last. Ray 2.60's default hash
shuffle returns them in hash order; any order is a valid Ray order, and sorted is the
useful one.

Accumulators that Arrow holds exactly (all ``int``, all ``float``, all ``str`` ...) are
stored as plain Arrow columns; any other accumulator is pickled in a ``PythonObjectType``
column, so user accumulators (tuples, dicts, sets, numpy scalars) come back unchanged.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from manta.data._internal.shuffling import concat_parts
from manta.data._internal.sorting import SortKey, sort_table
from manta.data._internal.tensors import column_to_pylist, objects_to_arrow, values_to_arrow
from manta.data.aggregate import AggregateFn

STATE_PREFIX = "__manta_agg_state_"
_EXACT_TYPES = (bool, int, float, str, bytes)


def output_names(aggs: Sequence[AggregateFn]) -> list[str]:
    """Output column names: each aggregation's name, with ``_2``, ``_3`` ... added to
    repeats (``["sum(x)", "sum(x)_2"]``), as Ray names them."""
    taken: set[str] = set()
    repeats: dict[str, int] = {}
    names = []
    for agg in aggs:
        name = agg.name
        while name in taken:
            repeats[agg.name] = repeats.get(agg.name, 1) + 1
            name = f"{agg.name}_{repeats[agg.name]}"
        taken.add(name)
        names.append(name)
    return names


def _keys(keys: str | list[str] | None) -> list[str]:
    return [] if keys is None else [keys] if isinstance(keys, str) else list(keys)


def _adjacent_equal(column: pa.ChunkedArray) -> np.ndarray:
    """Whether each row's value equals the previous row's (nulls equal nulls, NaN NaN)."""
    array = column.combine_chunks()
    before, after = array.slice(0, len(array) - 1), array.slice(1)
    same = pc.fill_null(pc.equal(before, after), False)
    same = pc.or_(same, pc.and_(pc.is_null(before), pc.is_null(after)))
    if pa.types.is_floating(array.type):
        same = pc.or_(same, pc.fill_null(pc.and_(pc.is_nan(before), pc.is_nan(after)), False))
    return np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool)


def group_offsets(table: pa.Table, keys: list[str]) -> list[int]:
    """Row offsets ``[0, ..., num_rows]`` between runs of equal ``keys`` in ``table``
    (sorted by the keys, so each run is a whole group). No keys: one group of all rows."""
    if not keys:
        return [0, table.num_rows]
    if table.num_rows == 0:
        return [0]
    same = np.ones(table.num_rows - 1, dtype=bool)
    for key in keys:
        same &= _adjacent_equal(table.column(key))
    starts = np.flatnonzero(~same) + 1
    return [0, *starts.tolist(), table.num_rows]


def _key_values(table: pa.Table, keys: list[str], starts: list[int]) -> tuple[pa.Table, list[Any]]:
    """The key columns at each group's first row, and the key as ``init`` receives it:
    the value for one key column, a tuple for several, ``()`` for none."""
    if not keys:
        return pa.table({}), [()] * len(starts)
    rows = table.select(keys).take(pa.array(starts, type=pa.int64()))
    columns = [column_to_pylist(rows.column(k)) for k in keys]
    if len(keys) == 1:
        return rows, columns[0]
    return rows, [tuple(values) for values in zip(*columns, strict=True)]


def _states_to_arrow(states: list[Any]) -> pa.Array:
    kinds = {type(s) for s in states if s is not None}
    kind = next(iter(kinds)) if len(kinds) == 1 else None
    if kind in _EXACT_TYPES:
        try:
            return pa.array(states)
        except (pa.ArrowInvalid, OverflowError):  # an int beyond 64 bits
            pass
    elif kind is list and all(s is None or all(type(v) is float for v in s) for s in states):
        return pa.array(states, type=pa.list_(pa.float64()))  # Mean's and Std's states
    return objects_to_arrow(states)


def _validate(table: pa.Table, keys: list[str], aggs: Sequence[AggregateFn]) -> None:
    SortKey(keys).validate_schema(table.schema)
    for agg in aggs:
        agg._validate(table.schema)


def _states_of(agg: AggregateFn, table: pa.Table, offsets: list[int], key_values: list[Any]) -> list[Any]:
    """One accumulator per group: vectorised where the aggregation can, else by
    accumulating each group's slice into its ``init``."""
    if table.num_rows > 0:
        states = agg._grouped_states(table, offsets)
        if states is not None:
            return states
    states = []
    for (start, end), key in zip(itertools.pairwise(offsets), key_values, strict=True):
        accumulator = agg.init(key)
        if end > start:
            accumulator = agg.accumulate_block(accumulator, table.slice(start, end - start))
        states.append(accumulator)
    return states


def aggregate_partial(table: pa.Table, keys: str | list[str] | None, aggs: Sequence[AggregateFn]) -> pa.Table:
    """The map side: one row per group of ``table`` with the key columns and, in column
    ``STATE_PREFIX + str(i)``, aggregation ``i``'s accumulator. Rows are sorted by key.
    Without keys there is exactly one row, even for an empty table (its accumulators
    are then the identities, so an empty dataset still has a result).

    Raises:
        ValueError: if a key column or an aggregation's column is missing.
    """
    keys = _keys(keys)
    if not keys and not aggs:
        raise ValueError("An aggregation without group keys needs at least one aggregation.")
    _validate(table, keys, aggs)
    ordered = sort_table(table, SortKey(keys)) if keys else table
    offsets = group_offsets(ordered, keys)
    starts = offsets[:-1]
    key_rows, key_values = _key_values(ordered, keys, starts)
    states = [_states_of(agg, ordered, offsets, key_values) for agg in aggs]
    columns = {k: key_rows.column(k) for k in keys}
    columns.update({f"{STATE_PREFIX}{i}": _states_to_arrow(s) for i, s in enumerate(states)})
    return pa.table(columns)


def _merged_states(
    partials: list[pa.Table], keys: list[str], aggs: Sequence[AggregateFn]
) -> tuple[pa.Table, list[int], list[list[Any]]]:
    """All partial rows sorted by key (stable, so earlier partials first), the group
    offsets in that order, and each aggregation's accumulators in that order."""
    non_empty = [p for p in partials if p.num_rows > 0]
    key_rows = concat_parts([p.select(keys) for p in partials]) if partials else pa.table({})
    if keys and key_rows.num_columns == 0:
        key_rows = pa.table({k: pa.nulls(0) for k in keys})
    states = [
        [v for p in non_empty for v in column_to_pylist(p.column(f"{STATE_PREFIX}{i}"))]
        for i in range(len(aggs))
    ]
    if keys and key_rows.num_rows > 1:
        order = pc.sort_indices(key_rows, sort_keys=SortKey(keys).to_arrow_sort_args())
        key_rows = key_rows.take(order)
        positions = order.to_pylist()
        states = [[column[p] for p in positions] for column in states]
    if keys:
        offsets = group_offsets(key_rows, keys)
    else:  # every keyless partial row belongs to the one group, if there is any row
        total = sum(p.num_rows for p in non_empty)
        offsets = [0, total] if total else [0]
    return key_rows, offsets, states


def finalize_groups(
    partials: list[pa.Table], keys: str | list[str] | None, aggs: Sequence[AggregateFn]
) -> pa.Table:
    """The reduce side: merge the accumulators of equal keys across ``partials`` (outputs
    of :func:`aggregate_partial`, possibly routed), finalize them, and return the key
    columns then one column per aggregation named by :func:`output_names`, one row per
    group, sorted by key with null keys last. Without keys the one row is the whole
    dataset's result, and there is no row when no partial has a row (a dataset of no
    blocks; an empty block still gives a partial row of identities).
    """
    keys = _keys(keys)
    key_rows, offsets, states = _merged_states(partials, keys, aggs)
    results: list[list[Any]] = [[] for _ in aggs]
    for start, end in itertools.pairwise(offsets):
        for index, agg in enumerate(aggs):
            accumulator = states[index][start]
            for other in states[index][start + 1 : end]:
                accumulator = agg.merge(accumulator, other)
            results[index].append(agg.finalize(accumulator))
    starts = pa.array(offsets[:-1], type=pa.int64())
    columns = {k: key_rows.column(k).take(starts) for k in keys}
    for name, values in zip(output_names(aggs), results, strict=True):
        columns[name] = values_to_arrow(values) if values else pa.nulls(0)
    return pa.table(columns)


def aggregate_all(partials: list[pa.Table], aggs: Sequence[AggregateFn]) -> dict[str, Any] | None:
    """``Dataset.aggregate(*aggs)``: ``{name: value}`` from keyless partials, values as
    Ray returns them (Python scalars, lists for ``Unique``, ``None`` where no values).
    ``None`` when there are no partials (a dataset of no blocks), as in Ray. For
    ``ds.sum("x")`` and friends pass the result to :func:`single_value`."""
    table = finalize_groups(partials, None, aggs)
    if table.num_rows == 0:
        return None
    return {name: column_to_pylist(table.column(name))[0] for name in table.column_names}


def single_value(result: dict[str, Any] | None) -> Any:
    """Ray's unwrapping for ``ds.sum/min/max/mean/std/unique``: the value when there
    is one aggregation, else the ``dict`` (or ``None``)."""
    return next(iter(result.values())) if result is not None and len(result) == 1 else result


def column_aggs(
    agg_cls: type[AggregateFn],
    on: str | list[str] | None,
    columns: list[str],
    skip: list[str] | None = None,
    **kwargs: Any,
) -> list[AggregateFn]:
    """One ``agg_cls`` per column for ``ds.sum(on)`` and ``groupby(k).sum(on)``: ``on``
    itself, each of a list, or (``on=None``) every column of ``columns`` not in ``skip``
    (the group keys).

    Raises:
        ValueError: if that leaves no column.
    """
    if on is None:
        # Without a known schema Ray keeps ``on=None``: one aggregation over whole rows.
        chosen: list[Any] = [c for c in columns if c not in (skip or [])] if columns else [None]
    else:
        chosen = on if isinstance(on, list) else [on]
    if not chosen:
        raise ValueError("At least 1 column to aggregate on has to be provided")
    return [agg_cls(column, **kwargs) for column in chosen]  # type: ignore[call-arg]


def split_groups(table: pa.Table, keys: str | list[str] | None) -> Iterator[pa.Table]:
    """For ``map_groups``: the runs of equal ``keys`` of ``table`` (sorted by the keys,
    e.g. by :func:`~manta.data._internal.sorting.sort_table`) as zero-copy slices.
    No keys: the whole table as one group; an empty table has no groups."""
    keys = _keys(keys)
    if table.num_rows == 0:
        return
    offsets = group_offsets(table, keys)
    for start, end in itertools.pairwise(offsets):
        yield table.slice(start, end - start)
