"""``GroupedData`` (``ds.groupby(key)``) and aggregations over a whole dataset.

Grouped aggregations run as a range-partitioned shuffle (``_internal/all_to_all.py``):
each block is reduced to one partial row per group, the partials are cut at sampled key
boundaries, and each output merges its range, so the result comes out sorted by key, as
Ray's does. A whole-dataset aggregation reduces each block to a partial in a task and
merges the partials in the driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import manta
from manta.data import aggregate as agg
from manta.data._internal import grouping, logical, map_options, sorting
from manta.data._internal.transforms import PartialAggregate, UserFn

if TYPE_CHECKING:
    from manta.data.dataset import Dataset


class GroupedData:
    """The rows of a dataset grouped by one or more key columns."""

    def __init__(
        self, dataset: Dataset, key: str | list[str] | None, num_partitions: int | None = None
    ) -> None:
        if num_partitions is not None and num_partitions < 1:
            raise ValueError(f"num_partitions must be at least 1, got {num_partitions}")
        self._dataset = dataset
        self._keys = [] if key is None else ([key] if isinstance(key, str) else list(key))
        self._num_partitions = num_partitions

    def __repr__(self) -> str:
        return f"GroupedData(dataset={self._dataset!r}, key={self._keys!r})"

    def _sort_key(self) -> sorting.SortKey:
        key = sorting.SortKey(self._keys)
        known = self._dataset.schema(fetch_if_missing=False)  # else checked in the shuffle's tasks
        key.validate_schema(None if known is None else known.base_schema)
        return key

    def aggregate(self, *aggs: agg.AggregateFn) -> Dataset:
        """One row per group: the keys, then one column per aggregation."""
        if not aggs:
            raise ValueError("aggregate needs at least one aggregation")
        for one in aggs:
            if not isinstance(one, agg.AggregateFn):
                raise TypeError(f"aggregate takes AggregateFn instances, got {type(one).__name__}")
        if not self._keys:
            from manta.data.read_api import from_items

            result = aggregate_dataset(self._dataset, list(aggs))
            return from_items([] if result is None else [result])
        key = self._sort_key()
        partials = _partials(self._dataset, self._keys, list(aggs))
        return partials._all_to_all(
            "aggregate",
            "Aggregate",
            key=key,
            keys=self._keys,
            aggs=list(aggs),
            num_outputs=self._num_partitions,
        )

    def _simple(self, agg_cls: type[agg.AggregateFn], on: str | list[str] | None, **kwargs: Any) -> Dataset:
        columns = self._dataset._fetched_schema().names
        return self.aggregate(*grouping.column_aggs(agg_cls, on, columns, self._keys, **kwargs))

    def count(self) -> Dataset:
        return self.aggregate(agg.Count())

    def sum(self, on: str | list[str] | None = None, ignore_nulls: bool = True) -> Dataset:
        return self._simple(agg.Sum, on, ignore_nulls=ignore_nulls)

    def min(self, on: str | list[str] | None = None, ignore_nulls: bool = True) -> Dataset:
        return self._simple(agg.Min, on, ignore_nulls=ignore_nulls)

    def max(self, on: str | list[str] | None = None, ignore_nulls: bool = True) -> Dataset:
        return self._simple(agg.Max, on, ignore_nulls=ignore_nulls)

    def mean(self, on: str | list[str] | None = None, ignore_nulls: bool = True) -> Dataset:
        return self._simple(agg.Mean, on, ignore_nulls=ignore_nulls)

    def std(self, on: str | list[str] | None = None, ddof: int = 1, ignore_nulls: bool = True) -> Dataset:
        return self._simple(agg.Std, on, ddof=ddof, ignore_nulls=ignore_nulls)

    def map_groups(
        self,
        fn: Any,
        *,
        zero_copy_batch: bool = True,
        compute: Any = None,
        batch_format: str | None = "default",
        fn_args: Any = None,
        fn_kwargs: dict[str, Any] | None = None,
        fn_constructor_args: Any = None,
        fn_constructor_kwargs: dict[str, Any] | None = None,
        num_cpus: float | None = None,
        num_gpus: float | None = None,
        memory: float | None = None,
        concurrency: Any = None,
        **ray_remote_args: Any,
    ) -> Dataset:
        """Applies ``fn`` to each group as one batch; groups never straddle two tasks. The
        tasks that run ``fn`` take ``num_cpus``/``num_gpus``/``memory`` and the other remote
        arguments; a callable class, ``compute`` and ``concurrency`` (an actor pool) are not
        supported yet."""
        if isinstance(fn, type) or compute is not None or concurrency is not None or fn_constructor_args:
            raise NotImplementedError(
                "map_groups runs functions as tasks; a callable class, compute= and concurrency= are "
                "not supported yet"
            )
        user_fn = UserFn(fn, tuple(fn_args or ()), dict(fn_kwargs or {}))
        remote = map_options.remote_args(num_cpus, num_gpus, memory, ray_remote_args)
        if not self._keys:
            return self._dataset.repartition(1).map_batches(
                fn, batch_format=batch_format, fn_args=fn_args, fn_kwargs=fn_kwargs, **remote
            )
        return self._dataset._all_to_all(
            "map_groups", f"MapGroups({user_fn.name})", key=self._sort_key(), keys=self._keys, fn=user_fn,
            batch_format=batch_format, num_outputs=self._num_partitions, remote_args=remote,
        )  # fmt: skip


def aggregate_dataset(dataset: Dataset, aggs: list[agg.AggregateFn]) -> dict[str, Any] | None:
    """``ds.aggregate(*aggs)``: a dict of aggregation name to value (``None`` for a dataset
    without blocks, as Ray gives)."""
    if not aggs:
        raise ValueError("aggregate needs at least one aggregation")
    tables = [manta.get(ref) for ref in _partials(dataset, None, aggs).to_arrow_refs()]
    return grouping.aggregate_all(tables, aggs)


def _partials(dataset: Dataset, keys: list[str] | None, aggs: list[agg.AggregateFn]) -> Dataset:
    """Each block reduced to partial aggregates; only the columns the aggregations read
    are kept first (read, where the reader can project)."""
    source = dataset
    needed = _columns_needed(keys, aggs)
    if needed is not None:
        source = dataset.select_columns(needed) if needed else dataset
    step = PartialAggregate(keys, aggs)
    return source._then(logical.MapOp((source._plan,), step.name, step))


def _columns_needed(keys: list[str] | None, aggs: list[agg.AggregateFn]) -> list[str] | None:
    """The columns ``aggs`` grouped by ``keys`` read, or ``None`` if an aggregation does
    not say (a user's ``AggregateFn`` sees whole rows)."""
    needed = dict.fromkeys(keys or [])
    for one in aggs:
        if not isinstance(one, agg.AggregateFnV2):
            return None
        column = one.get_target_column()
        if column is not None:
            needed[column] = None
    return list(needed)


def simple_aggregate(dataset: Dataset, agg_name: str, on: str | list[str] | None, **kwargs: Any) -> Any:
    """``ds.sum(on)`` and friends: the value for one column, a dict for several."""
    agg_cls = getattr(agg, agg_name)
    aggs = grouping.column_aggs(agg_cls, on, dataset._fetched_schema().names, None, **kwargs)
    result = aggregate_dataset(dataset, aggs)
    return None if result is None else grouping.single_value(result)
