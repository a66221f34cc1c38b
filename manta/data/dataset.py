"""``Dataset``: a lazy, distributed table of rows, with Ray Data's API.

A dataset is a logical plan (``_internal/logical.py``) and a copy of the ``DataContext``
it was made under. Transforms return a new dataset with one more node; consuming one
(``take``, ``iter_batches``, ``write_*``, ``materialize``, ...) plans it, fuses its maps
and streams it through the executor. How Manta differs from Ray is said where a method
does; the largest difference is that outputs keep their input order by default
(``DataContext.execution_options.preserve_order``).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

import manta
from manta.data._internal import batches, execution, logical, map_options, planner, transforms
from manta.data._internal.bundles import RefBundle
from manta.data._internal.stats import DatasetStats
from manta.data._internal.transforms import UserFn
from manta.data.block import BlockMetadata
from manta.data.context import DataContext
from manta.data.iterator import DataIterator
from manta.data.schema import Schema, type_name

if TYPE_CHECKING:
    from manta.data.grouped_data import GroupedData


class Dataset:
    def __init__(self, plan: logical.LogicalOp, context: DataContext | None = None) -> None:
        self._plan = plan
        self._context = (context or DataContext.get_current()).copy()
        self._uuid = uuid.uuid4().hex[:12]
        self._last_stats: DatasetStats | None = None

    def __repr__(self) -> str:
        """What is known without running: the last operator, the rows and the schema
        (``?`` where only running would tell, or while no cluster is up)."""
        rows: int | None = None
        columns = "?"
        if manta.is_initialized():
            rows = planner.known_num_rows(self._plan, lambda read: execution.read_rows(read, self._context))
            known = planner.known_schema(self._plan, self._read_schema, self._input_schema)
            if known is not None:
                columns = "{" + ", ".join(f"{f.name}: {type_name(f.type)}" for f in known) + "}"
        shown = "?" if rows is None else str(rows)
        return f"{type(self).__name__}(name={self._plan.name}, num_rows={shown}, schema={columns})"

    def context(self) -> DataContext:
        return self._context

    def _then(self, op: logical.LogicalOp) -> Dataset:
        return Dataset(op, self._context)

    # -- transforms -------------------------------------------------------------------------------
    def _map_op(
        self,
        step: Callable[[UserFn], transforms.Transform],
        fn: Any,
        *,
        compute: Any = None,
        fn_args: Iterable[Any] | None = None,
        fn_kwargs: dict[str, Any] | None = None,
        fn_constructor_args: Iterable[Any] | None = None,
        fn_constructor_kwargs: dict[str, Any] | None = None,
        num_cpus: float | None = None,
        num_gpus: float | None = None,
        memory: float | None = None,
        concurrency: Any = None,
        min_rows_per_bundle: int | None = None,
        keeps_rows: bool = False,
        ray_remote_args: dict[str, Any] | None = None,
    ) -> Dataset:
        if not callable(fn):
            raise TypeError(f"expected a function or a callable class, got {type(fn).__name__}: {fn!r}")
        strategy = map_options.compute_strategy(fn, compute, concurrency, fn_constructor_args)
        user_fn = UserFn(
            fn, tuple(fn_args or ()), dict(fn_kwargs or {}), tuple(fn_constructor_args or ()),
            dict(fn_constructor_kwargs or {}),
        )  # fmt: skip
        step_ = step(user_fn)
        args = map_options.remote_args(num_cpus, num_gpus, memory, dict(ray_remote_args or {}))
        op = logical.MapOp((self._plan,), step_.name, step_, strategy, args, min_rows_per_bundle, keeps_rows)
        return self._then(op)

    def map(self, fn: Any, *, compute: Any = None, fn_args: Iterable[Any] | None = None,
            fn_kwargs: dict[str, Any] | None = None, fn_constructor_args: Iterable[Any] | None = None,
            fn_constructor_kwargs: dict[str, Any] | None = None, num_cpus: float | None = None,
            num_gpus: float | None = None, memory: float | None = None, concurrency: Any = None,
            **ray_remote_args: Any) -> Dataset:  # fmt: skip
        """Applies ``fn`` to each row (a dict) and keeps the dict it returns."""
        return self._map_op(
            transforms.MapRows, fn, compute=compute, fn_args=fn_args, fn_kwargs=fn_kwargs,
            fn_constructor_args=fn_constructor_args, fn_constructor_kwargs=fn_constructor_kwargs,
            num_cpus=num_cpus, num_gpus=num_gpus, memory=memory, concurrency=concurrency,
            keeps_rows=True, ray_remote_args=ray_remote_args,
        )  # fmt: skip

    def flat_map(self, fn: Any, *, compute: Any = None, fn_args: Iterable[Any] | None = None,
                 fn_kwargs: dict[str, Any] | None = None, fn_constructor_args: Iterable[Any] | None = None,
                 fn_constructor_kwargs: dict[str, Any] | None = None, num_cpus: float | None = None,
                 num_gpus: float | None = None, memory: float | None = None, concurrency: Any = None,
                 **ray_remote_args: Any) -> Dataset:  # fmt: skip
        """Applies ``fn`` to each row; each returns a list of rows."""
        return self._map_op(
            transforms.FlatMap, fn, compute=compute, fn_args=fn_args, fn_kwargs=fn_kwargs,
            fn_constructor_args=fn_constructor_args, fn_constructor_kwargs=fn_constructor_kwargs,
            num_cpus=num_cpus, num_gpus=num_gpus, memory=memory, concurrency=concurrency,
            ray_remote_args=ray_remote_args,
        )  # fmt: skip

    def filter(self, fn: Any = None, expr: str | None = None, *, compute: Any = None,
               fn_args: Iterable[Any] | None = None,
               fn_kwargs: dict[str, Any] | None = None, fn_constructor_args: Iterable[Any] | None = None,
               fn_constructor_kwargs: dict[str, Any] | None = None, num_cpus: float | None = None,
               num_gpus: float | None = None, memory: float | None = None, concurrency: Any = None,
               **ray_remote_args: Any) -> Dataset:  # fmt: skip
        """Keeps the rows for which ``fn(row)`` is true, or those ``expr`` (a Python
        expression over the columns, such as ``"id > 5 and name in ['a', 'b']"``) holds for;
        an expression filters whole blocks in Arrow, with no Python call per row."""
        if (fn is None) == (expr is None):
            raise ValueError("Exactly one of 'fn' or 'expr' must be provided.")
        if expr is not None:
            if fn_args or fn_kwargs or fn_constructor_args or fn_constructor_kwargs:
                raise ValueError(
                    "when 'expr' is used, fn_args/fn_kwargs/fn_constructor_args/kwargs cannot be used"
                )
            step = transforms.FilterExpr(expr)
            args = map_options.remote_args(num_cpus, num_gpus, memory, dict(ray_remote_args))
            return self._then(logical.MapOp((self._plan,), step.name, step, remote_args=args))
        return self._map_op(
            transforms.Filter, fn, compute=compute, fn_args=fn_args, fn_kwargs=fn_kwargs,
            fn_constructor_args=fn_constructor_args, fn_constructor_kwargs=fn_constructor_kwargs,
            num_cpus=num_cpus, num_gpus=num_gpus, memory=memory, concurrency=concurrency,
            ray_remote_args=ray_remote_args,
        )  # fmt: skip

    def map_batches(self, fn: Any, *, batch_size: int | str | None = None, compute: Any = None,
                    batch_format: str | None = "default", zero_copy_batch: bool = True,
                    fn_args: Iterable[Any] | None = None, fn_kwargs: dict[str, Any] | None = None,
                    fn_constructor_args: Iterable[Any] | None = None,
                    fn_constructor_kwargs: dict[str, Any] | None = None, num_cpus: float | None = None,
                    num_gpus: float | None = None, memory: float | None = None, concurrency: Any = None,
                    udf_modifying_row_count: bool = True, **ray_remote_args: Any) -> Dataset:  # fmt: skip
        """Applies ``fn`` to batches of ``batch_size`` rows (``None``: a whole block) in
        ``batch_format``. A callable class runs on an actor pool (``concurrency=n`` or
        ``(min, max)``), made once per actor with ``fn_constructor_args``. ``fn`` returns a
        batch (dict of arrays, DataFrame or Arrow table) or yields several."""
        batches.check_batch_format(batch_format)
        if batch_size == "auto":
            batch_size = None
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
        size = batch_size if isinstance(batch_size, int) else None
        return self._map_op(
            lambda f: transforms.MapBatches(f, size, batch_format, zero_copy_batch), fn, compute=compute,
            fn_args=fn_args, fn_kwargs=fn_kwargs, fn_constructor_args=fn_constructor_args,
            fn_constructor_kwargs=fn_constructor_kwargs, num_cpus=num_cpus, num_gpus=num_gpus,
            memory=memory, concurrency=concurrency, min_rows_per_bundle=size,
            keeps_rows=not udf_modifying_row_count, ray_remote_args=ray_remote_args,
        )  # fmt: skip

    def add_column(self, col: str, fn: Callable[[Any], Any], *, batch_format: str | None = "pandas",
                   compute: Any = None, concurrency: Any = None, num_cpus: float | None = None,
                   num_gpus: float | None = None, memory: float | None = None,
                   **ray_remote_args: Any) -> Dataset:  # fmt: skip
        """Adds (or replaces) column ``col`` with what ``fn(batch)`` returns."""
        batches.check_batch_format(batch_format)
        return self._map_op(
            lambda f: transforms.AddColumn(col, f, batch_format), fn, compute=compute,
            num_cpus=num_cpus, num_gpus=num_gpus, memory=memory, concurrency=concurrency,
            keeps_rows=True, ray_remote_args=ray_remote_args,
        )  # fmt: skip

    def _project(self, project: transforms.Project) -> Dataset:
        op = logical.MapOp((self._plan,), project.name, project, keeps_rows=True)
        return self._then(op)

    def select_columns(self, cols: str | list[str], **ray_remote_args: Any) -> Dataset:
        """Keeps only ``cols``, in that order."""
        names = [cols] if isinstance(cols, str) else list(cols)
        if len(set(names)) != len(names):
            raise ValueError(f"select_columns got duplicate columns: {names}")
        return self._project(transforms.Project(select=names))

    def drop_columns(self, cols: list[str], **ray_remote_args: Any) -> Dataset:
        """Drops ``cols``."""
        names = [cols] if isinstance(cols, str) else list(cols)
        if len(set(names)) != len(names):
            raise ValueError(f"drop_columns got duplicate columns: {names}")
        return self._project(transforms.Project(drop=names))

    def rename_columns(self, names: list[str] | dict[str, str], **ray_remote_args: Any) -> Dataset:
        """Renames columns: a dict of old name to new, or a list of new names for all."""
        if isinstance(names, dict):
            if len(set(names.values())) != len(names):
                raise ValueError(f"rename_columns would give two columns one name: {names}")
            return self._project(transforms.Project(rename=names))
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise TypeError(
                f"rename_columns takes a dict of old to new names or a list of names, got {names!r}"
            )
        current = self._fetched_schema().names
        if len(names) != len(current):
            raise ValueError(f"rename_columns got {len(names)} names for {len(current)} columns {current}")
        return self._project(transforms.Project(rename=dict(zip(current, names, strict=True))))

    def limit(self, limit: int) -> Dataset:
        """The first ``limit`` rows."""
        if not isinstance(limit, int) or limit < 0:
            raise ValueError(f"limit must be a non-negative integer, got {limit!r}")
        return self._then(logical.Limit((self._plan,), f"limit={limit}", limit))

    def _all_to_all(
        self, kind: str, name: str, inputs: Sequence[logical.LogicalOp] = (), **args: Any
    ) -> Dataset:
        return self._then(logical.AllToAll((self._plan, *inputs), name, kind, args))

    def repartition(self, num_blocks: int | None = None, target_num_rows_per_block: int | None = None, *,
                    strict: bool = False, shuffle: bool = False, keys: list[str] | None = None,
                    sort: bool = False) -> Dataset:  # fmt: skip
        """``num_blocks`` blocks of (nearly) equal rows; ``shuffle=True`` makes each output
        take a slice of every input block. ``target_num_rows_per_block`` counts the rows
        first (running the dataset once more); ``keys`` and ``sort`` are not supported yet."""
        if (num_blocks is None) == (target_num_rows_per_block is None):
            raise ValueError("repartition takes exactly one of num_blocks and target_num_rows_per_block")
        if keys is not None or sort:
            raise NotImplementedError(
                "repartition(keys=..., sort=...) is not supported yet; use sort() or groupby()"
            )
        if num_blocks is not None and num_blocks < 1:
            raise ValueError(f"num_blocks must be at least 1, got {num_blocks}")
        if num_blocks is None:
            assert target_num_rows_per_block is not None
            if target_num_rows_per_block < 1:
                raise ValueError(
                    f"target_num_rows_per_block must be at least 1, got {target_num_rows_per_block}"
                )
            num_blocks = max(1, -(-self.count() // target_num_rows_per_block))
        return self._all_to_all("repartition", "Repartition", num_outputs=num_blocks, shuffle=shuffle)

    def random_shuffle(self, *, seed: int | None = None, num_blocks: int | None = None,
                       **ray_remote_args: Any) -> Dataset:  # fmt: skip
        """Rows in a random order (the same order for the same ``seed``)."""
        return self._all_to_all("random_shuffle", "RandomShuffle", seed=seed, num_outputs=num_blocks)

    def randomize_block_order(self, *, seed: int | None = None) -> Dataset:
        """Blocks in a random order; rows within a block keep theirs."""
        return self._all_to_all("randomize_block_order", "RandomizeBlockOrder", seed=seed)

    def sort(self, key: str | list[str], descending: bool | list[bool] = False,
             boundaries: list[Any] | None = None) -> Dataset:  # fmt: skip
        """Rows sorted by ``key`` (one column or several, each ascending or descending)."""
        from manta.data._internal import sorting

        sort_key = sorting.SortKey(key, descending)
        known = self.schema(fetch_if_missing=False)  # not run for this: checked in the sort's tasks then
        sort_key.validate_schema(None if known is None else known.base_schema)
        return self._all_to_all("sort", f"Sort({key})", key=sort_key)

    def groupby(self, key: str | list[str] | None, num_partitions: int | None = None) -> GroupedData:
        """Groups rows by ``key`` for aggregations and ``map_groups``."""
        from manta.data.grouped_data import GroupedData

        return GroupedData(self, key, num_partitions)

    def union(self, *other: Dataset) -> Dataset:
        """Rows of this dataset, then of each of ``other``."""
        plans = (self._plan, *(ds._plan for ds in other))
        return self._then(logical.Union(plans, "Union"))

    def zip(self, *other: Dataset) -> Dataset:
        """Columns of this dataset beside those of ``other`` (same number of rows); a
        repeated column name gets a ``_1`` suffix."""
        out = self
        for ds in other:
            out = out._all_to_all("zip", "Zip", inputs=(ds._plan,))
        return out

    # -- consuming --------------------------------------------------------------------------------
    def _bundles(self) -> Iterator[RefBundle]:
        executor = execution.run(self._plan, self._context)
        self._last_stats = executor.stats
        return iter(executor)

    def iterator(self) -> DataIterator:
        """A ``DataIterator`` over this dataset (each iteration runs it again)."""
        return DataIterator(self._bundles, self.schema, self._plan.name)

    def iter_batches(self, *, prefetch_batches: int = 1, batch_size: int | None = 256,
                     batch_format: str | None = "default", drop_last: bool = False,
                     local_shuffle_buffer_size: int | None = None, local_shuffle_seed: int | None = None,
                     _collate_fn: Callable[[Any], Any] | None = None) -> Iterator[Any]:  # fmt: skip
        """Batches of the dataset as it streams; see ``DataIterator.iter_batches``."""
        return self.iterator().iter_batches(
            prefetch_batches=prefetch_batches, batch_size=batch_size, batch_format=batch_format,
            drop_last=drop_last, local_shuffle_buffer_size=local_shuffle_buffer_size,
            local_shuffle_seed=local_shuffle_seed, _collate_fn=_collate_fn,
        )  # fmt: skip

    def iter_torch_batches(self, **kwargs: Any) -> Iterator[Any]:
        """Batches as torch tensors; see ``DataIterator.iter_torch_batches``."""
        return self.iterator().iter_torch_batches(**kwargs)

    def iter_rows(self) -> Iterator[dict[str, Any]]:
        return self.iterator().iter_rows()

    def take(self, limit: int = 20) -> list[dict[str, Any]]:
        """Up to ``limit`` rows, as dicts."""
        return list(itertools.islice(self.limit(limit).iter_rows(), limit))

    def take_all(self, limit: int | None = None) -> list[dict[str, Any]]:
        """All rows; with ``limit``, raises ``ValueError`` if there are more than that."""
        rows = []
        for row in self.iter_rows():
            rows.append(row)
            if limit is not None and len(rows) > limit:
                raise ValueError(f"The dataset has more than the given limit of {limit} records.")
        return rows

    def take_batch(self, batch_size: int = 20, *, batch_format: str | None = "default") -> Any:
        """One batch of up to ``batch_size`` rows."""
        batches.check_batch_format(batch_format)
        blocks = [manta.get(ref) for bundle in self.limit(batch_size)._bundles() for ref in bundle.refs]
        table = transforms.concat(blocks) if blocks else self._fetched_schema().base_schema.empty_table()
        return batches.to_batch(table, batch_format)

    def show(self, limit: int = 20) -> None:
        for row in self.take(limit):
            print(row)

    def count(self) -> int:
        """The number of rows; from metadata when no operator changes the count."""
        known = planner.known_num_rows(self._plan, lambda read: execution.read_rows(read, self._context))
        if known is not None:
            return known
        counted = self
        top = self._plan
        if isinstance(top, logical.MapOp) and isinstance(top.transform, transforms.FilterExpr):
            # Only rows are counted: one of the filter's columns is kept, and a filter pushed
            # into a Parquet scan then reads no other column.
            counted = self.select_columns([min(top.transform.columns)])
        return sum(bundle.num_rows for bundle in counted._bundles())

    def schema(self, fetch_if_missing: bool = True) -> Schema | None:
        """Column names and types: from the files' metadata and the plan where they tell
        (through sorts, shuffles, limits, unions, column selections); else from the first
        block, running the dataset that far (``None`` instead if ``fetch_if_missing`` is
        false)."""
        known = planner.known_schema(self._plan, self._read_schema, self._input_schema)
        if known is not None:
            return Schema(known)
        if not fetch_if_missing:
            return None
        for bundle in self.limit(1)._bundles():
            for ref in bundle.refs:
                return Schema(manta.get(ref).schema)
        return Schema(pa.schema([]))

    def _fetched_schema(self) -> Schema:
        schema = self.schema()
        assert schema is not None  # fetched when not known
        return schema

    def _read_schema(self, read: logical.Read) -> pa.Schema | None:
        tasks = execution.read_tasks(read, self._context)
        return tasks[0].schema if tasks else None

    @staticmethod
    def _input_schema(blocks: logical.InputBlocks) -> pa.Schema | None:
        return manta.get(blocks.blocks[0][0]).schema if blocks.blocks else None

    def columns(self, fetch_if_missing: bool = True) -> list[str] | None:
        schema = self.schema(fetch_if_missing)
        return None if schema is None else schema.names

    def to_pandas(self, limit: int | None = None) -> Any:
        """All rows as one DataFrame (``ValueError`` past ``limit`` rows)."""
        blocks = [manta.get(ref) for bundle in self._bundles() for ref in bundle.refs]
        table = transforms.concat(blocks) if blocks else pa.table({})
        if limit is not None and table.num_rows > limit:
            raise ValueError(
                f"the dataset has {table.num_rows} rows, over the limit of {limit}; call limit() first"
            )
        return batches.to_pandas(table)

    def to_arrow_refs(self) -> list[Any]:
        """One ref per block, each to a ``pyarrow.Table``."""
        return [ref for bundle in self._bundles() for ref in bundle.refs]

    def to_pandas_refs(self) -> list[Any]:
        convert = manta.remote(batches.to_pandas)
        return [convert.remote(ref) for ref in self.to_arrow_refs()]

    def materialize(self) -> MaterializedDataset:
        """Runs the dataset and keeps its blocks in the object store."""
        blocks = tuple(block for bundle in self._bundles() for block in bundle.blocks)
        out = MaterializedDataset(logical.InputBlocks((), "Materialized", blocks), self._context)
        out._last_stats = self._last_stats
        return out

    def stats(self) -> str:
        """Per operator: tasks, blocks, rows, time and memory of the last run ("" before one)."""
        return "" if self._last_stats is None else self._last_stats.to_summary()

    # -- aggregations over the whole dataset -------------------------------------------------------
    def aggregate(self, *aggs: Any) -> Any:
        from manta.data.grouped_data import aggregate_dataset

        return aggregate_dataset(self, list(aggs))

    def _simple(self, agg_name: str, on: str | list[str] | None, **kwargs: Any) -> Any:
        from manta.data.grouped_data import simple_aggregate

        return simple_aggregate(self, agg_name, on, **kwargs)

    def sum(self, on: str | list[str] | None = None, ignore_nulls: bool = True) -> Any:
        return self._simple("Sum", on, ignore_nulls=ignore_nulls)

    def min(self, on: str | list[str] | None = None, ignore_nulls: bool = True) -> Any:
        return self._simple("Min", on, ignore_nulls=ignore_nulls)

    def max(self, on: str | list[str] | None = None, ignore_nulls: bool = True) -> Any:
        return self._simple("Max", on, ignore_nulls=ignore_nulls)

    def mean(self, on: str | list[str] | None = None, ignore_nulls: bool = True) -> Any:
        return self._simple("Mean", on, ignore_nulls=ignore_nulls)

    def std(self, on: str | list[str] | None = None, ddof: int = 1, ignore_nulls: bool = True) -> Any:
        return self._simple("Std", on, ddof=ddof, ignore_nulls=ignore_nulls)

    def unique(self, column: str, ignore_nulls: bool = False) -> list[Any]:
        """The distinct values of ``column``."""
        rows = self.select_columns([column]).groupby(column).count().take_all()
        return [row[column] for row in rows if not (ignore_nulls and row[column] is None)]

    # -- splitting and writing (in _internal/splits.py and _internal/writes.py) --------------------
    def split(
        self, n: int, *, equal: bool = False, locality_hints: list[Any] | None = None
    ) -> list[MaterializedDataset]:
        """``n`` materialized parts: whole blocks spread evenly by rows, or (``equal``)
        exactly equal row counts, the remainder dropped as in Ray."""
        from manta.data._internal import splits

        return splits.split(self, n, equal)

    def split_at_indices(self, indices: list[int]) -> list[MaterializedDataset]:
        """Materialized parts cut at these row indices (sorted), like ``np.split``."""
        from manta.data._internal import splits

        return splits.split_at_indices(self, indices)

    def split_proportionately(self, proportions: list[float]) -> list[MaterializedDataset]:
        """Parts holding these shares of the rows, and one more with the rest."""
        from manta.data._internal import splits

        return splits.split_proportionately(self, proportions)

    def train_test_split(self, test_size: int | float, *, shuffle: bool = False, seed: int | None = None,
                         stratify: str | None = None) -> tuple[MaterializedDataset, MaterializedDataset]:  # fmt: skip
        """``(train, test)``; ``test_size`` is a share (float) or a row count (int). With
        ``stratify`` (a column), each class is split alone: the last ``int(n * share)`` rows
        of a class of ``n`` go to test, as in Ray."""
        from manta.data._internal import splits

        return splits.train_test_split(self, test_size, shuffle, seed, stratify)

    def streaming_split(
        self, n: int, *, equal: bool = False, locality_hints: list[Any] | None = None
    ) -> list[DataIterator]:
        """``n`` iterators fed as the dataset runs, each bundle to whichever asks next (pass
        them to training workers); a shard's next epoch waits for every shard to finish
        the current one. With ``equal=True`` the dataset is materialized and split into
        equal parts first (unlike Ray, which equalizes as it streams)."""
        from manta.data._internal import splits

        return splits.streaming_split(self, n, equal)

    def write_datasink(self, datasink: Any, *, ray_remote_args: dict[str, Any] | None = None,
                       concurrency: int | None = None) -> None:  # fmt: skip
        from manta.data._internal import writes

        writes.write(self, datasink, ray_remote_args or {}, concurrency)

    def write_parquet(self, path: str, *, ray_remote_args: dict[str, Any] | None = None,
                      concurrency: int | None = None, **kwargs: Any) -> None:  # fmt: skip
        from manta.data.datasource import ParquetDatasink

        self.write_datasink(
            ParquetDatasink(path, **kwargs), ray_remote_args=ray_remote_args, concurrency=concurrency
        )

    def write_csv(self, path: str, *, ray_remote_args: dict[str, Any] | None = None,
                  concurrency: int | None = None, **kwargs: Any) -> None:  # fmt: skip
        from manta.data.datasource import CSVDatasink

        self.write_datasink(
            CSVDatasink(path, **kwargs), ray_remote_args=ray_remote_args, concurrency=concurrency
        )

    def write_json(self, path: str, *, ray_remote_args: dict[str, Any] | None = None,
                   concurrency: int | None = None, **kwargs: Any) -> None:  # fmt: skip
        from manta.data.datasource import JSONDatasink

        self.write_datasink(
            JSONDatasink(path, **kwargs), ray_remote_args=ray_remote_args, concurrency=concurrency
        )

    def write_numpy(self, path: str, *, column: str, ray_remote_args: dict[str, Any] | None = None,
                    concurrency: int | None = None, **kwargs: Any) -> None:  # fmt: skip
        from manta.data.datasource import NumpyDatasink

        sink = NumpyDatasink(path, column=column, **kwargs)
        self.write_datasink(sink, ray_remote_args=ray_remote_args, concurrency=concurrency)


class MaterializedDataset(Dataset):
    """A dataset whose blocks are in the object store (``materialize``, ``from_*``, splits)."""

    def num_blocks(self) -> int:
        return len(self._blocks())

    def _blocks(self) -> tuple[tuple[Any, BlockMetadata], ...]:
        assert isinstance(self._plan, logical.InputBlocks)
        return self._plan.blocks

    def size_bytes(self) -> int:
        return sum(meta.size_bytes or 0 for _, meta in self._blocks())

    def input_files(self) -> list[str]:
        files: dict[str, None] = {}
        for _, meta in self._blocks():
            files.update(dict.fromkeys(meta.input_files or ()))
        return list(files)
