"""What a map task does to its blocks: each transform turns a stream of blocks into a
stream of blocks, and a fused stage is a chain of them run in one task.

User functions are called here, so this is where their errors are given context: the
function's name and the row (or the batch's shape) it failed on, raised as
``UserCodeException`` from the user's exception (as Ray raises it), so the remote
traceback shows both.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from manta.data._internal import batches, predicates, tensors
from manta.exceptions import UserCodeException

Blocks = Iterator[pa.Table]


@dataclass
class UserFn:
    """A user's function or callable class, with the arguments Ray lets users bind to it.
    A class is made once per process that runs it (an actor of a pool), on first use."""

    fn: Any
    fn_args: Sequence[Any] = ()
    fn_kwargs: Mapping[str, Any] = field(default_factory=dict)
    constructor_args: Sequence[Any] = ()
    constructor_kwargs: Mapping[str, Any] = field(default_factory=dict)
    _bound: Any = field(default=None, repr=False, compare=False)

    @property
    def is_class(self) -> bool:
        return isinstance(self.fn, type)

    @property
    def name(self) -> str:
        return getattr(self.fn, "__name__", type(self.fn).__name__)

    def bind(self) -> Callable[..., Any]:
        if self._bound is None:
            if self.is_class:
                instance = self.fn(*self.constructor_args, **self.constructor_kwargs)
            else:
                instance = self.fn
            self._bound = instance
        return self._bound  # type: ignore[no-any-return]

    def __call__(self, value: Any) -> Any:
        return self.bind()(value, *self.fn_args, **self.fn_kwargs)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_bound"] = None  # an instance stays in the process that made it
        return state


class Transform:
    """One step of a map stage."""

    name = "Map"

    def __call__(self, blocks: Blocks) -> Blocks:
        raise NotImplementedError

    def user_fns(self) -> list[UserFn]:
        return []


def _failed(fn: UserFn, what: str, error: Exception) -> UserCodeException:
    message = (
        f"UDF failed to process a data block: {fn.name} raised {type(error).__name__}: {error}\n"
        f"while processing {what}"
    )
    return UserCodeException(message)


class MapRows(Transform):
    def __init__(self, fn: UserFn) -> None:
        self.fn = fn
        self.name = f"Map({fn.name})"

    def __call__(self, blocks: Blocks) -> Blocks:
        for block in blocks:
            out = []
            for row in batches.rows(block):
                try:
                    out.append(self.fn(row))
                except Exception as error:
                    raise _failed(self.fn, f"the row {batches.describe_row(row)}", error) from error
            yield batches.from_rows(out, f"map({self.fn.name})")

    def user_fns(self) -> list[UserFn]:
        return [self.fn]


class FlatMap(MapRows):
    def __init__(self, fn: UserFn) -> None:
        super().__init__(fn)
        self.name = f"FlatMap({fn.name})"

    def __call__(self, blocks: Blocks) -> Blocks:
        for block in blocks:
            out: list[Any] = []
            for row in batches.rows(block):
                try:
                    produced = self.fn(row)
                    if not isinstance(produced, Iterable) or isinstance(produced, (Mapping, str, bytes)):
                        raise TypeError(
                            f"flat_map's function must return a list (or other iterable) of rows, "
                            f"got {type(produced).__name__}"
                        )
                    out.extend(produced)
                except Exception as error:
                    raise _failed(self.fn, f"the row {batches.describe_row(row)}", error) from error
            yield batches.from_rows(out, f"flat_map({self.fn.name})")


class Filter(MapRows):
    def __init__(self, fn: UserFn) -> None:
        super().__init__(fn)
        self.name = f"Filter({fn.name})"

    def __call__(self, blocks: Blocks) -> Blocks:
        for block in blocks:
            keep = []
            for row in batches.rows(block):
                try:
                    keep.append(bool(self.fn(row)))
                except Exception as error:
                    raise _failed(self.fn, f"the row {batches.describe_row(row)}", error) from error
            yield block.filter(pa.array(keep, type=pa.bool_())) if keep else block


class MapBatches(Transform):
    def __init__(
        self, fn: UserFn, batch_size: int | None, batch_format: str | None, zero_copy_batch: bool
    ) -> None:
        self.fn = fn
        self.batch_size = batch_size
        self.batch_format = batch_format
        self.zero_copy_batch = zero_copy_batch
        self.name = f"MapBatches({fn.name})"

    def __call__(self, blocks: Blocks) -> Blocks:
        for table in rebatch(blocks, self.batch_size):
            batch = batches.to_batch(table, self.batch_format)
            if self.batch_format in ("default", "numpy") and not self.zero_copy_batch:
                batch = {k: v if v.flags.writeable else v.copy() for k, v in batch.items()}
            what = f"a batch of {table.num_rows} rows with columns {table.column_names}"
            try:
                result = self.fn(batch)
            except Exception as error:
                raise _failed(self.fn, what, error) from error
            outputs = result if inspect.isgenerator(result) else iter((result,))
            while True:  # a generator's batches go on one at a time, as it yields them
                try:
                    out = next(outputs)
                    block = batches.from_batch(out, self.fn.name, self.batch_format)
                except StopIteration:
                    break
                except Exception as error:
                    raise _failed(self.fn, what, error) from error
                yield block

    def user_fns(self) -> list[UserFn]:
        return [self.fn]


class AddColumn(Transform):
    def __init__(self, column: str, fn: UserFn, batch_format: str | None) -> None:
        self.column = column
        self.fn = fn
        self.batch_format = batch_format
        self.name = f"AddColumn({column})"

    def __call__(self, blocks: Blocks) -> Blocks:
        for block in blocks:
            try:
                values = self.fn(batches.to_batch(block, self.batch_format))
            except Exception as error:
                what = f"a batch of {block.num_rows} rows with columns {block.column_names}"
                raise _failed(self.fn, what, error) from error
            column = _as_column(values, self.column)
            if self.column in block.column_names:
                yield block.set_column(block.column_names.index(self.column), self.column, column)
            else:
                yield block.append_column(self.column, column)


def _as_column(values: Any, name: str) -> pa.Array | pa.ChunkedArray:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    if isinstance(values, np.ndarray):
        return tensors.ndarray_to_arrow(values)
    if hasattr(values, "to_numpy") and hasattr(values, "dtype"):  # a pandas Series
        return tensors.values_to_arrow(list(values)) if values.dtype == object else pa.array(values)
    if isinstance(values, (list, tuple)):
        return tensors.values_to_arrow(list(values))
    raise TypeError(
        f"add_column's function for {name!r} must return a column (a pandas Series, numpy array, list "
        f"or pyarrow array), got {type(values).__name__}"
    )


class PartialAggregate(Transform):
    """Each block reduced to one row per group of partial aggregation states, as the data
    streams in, so a groupby holds partials, not its input, before its shuffle."""

    def __init__(self, keys: Sequence[str] | None, aggs: Sequence[Any]) -> None:
        self.keys = list(keys) if keys else None
        self.aggs = list(aggs)
        self.name = "Aggregate(partial)"

    def __call__(self, blocks: Blocks) -> Blocks:
        from manta.data._internal import grouping

        for block in blocks:
            yield grouping.aggregate_partial(block, self.keys, self.aggs)


class FilterExpr(Transform):
    """``filter(expr="...")``: rows kept by an Arrow expression, block by block."""

    def __init__(self, text: str) -> None:
        self.text = text
        # Checked where the dataset is built.
        self.expression, self.columns = predicates.parse_with_columns(text)
        self.name = f"Filter({text})"

    def schema_of(self, schema: pa.Schema) -> pa.Schema:
        return schema

    def __call__(self, blocks: Blocks) -> Blocks:
        for block in blocks:
            if block.num_rows == 0:  # an empty block may have no columns at all
                yield block
                continue
            try:
                yield block.filter(self.expression)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as e:
                raise ValueError(
                    f"filter expression {self.text!r} cannot be applied to the columns {block.column_names}: {e}"
                ) from None


class Project(Transform):
    """``select_columns``, ``drop_columns`` and ``rename_columns``."""

    def __init__(
        self,
        select: Sequence[str] | None = None,
        drop: Sequence[str] | None = None,
        rename: Mapping[str, str] | None = None,
    ) -> None:
        self.select, self.drop, self.rename = select, drop, rename
        self.name = "Project" if rename is None else "RenameColumns"

    def schema_of(self, schema: pa.Schema) -> pa.Schema | None:
        """The schema this step makes of ``schema`` (``None`` if it names a missing column)."""
        names = schema.names
        wanted = [*(self.select or ()), *(self.drop or ()), *(self.rename or {})]
        if any(name not in names for name in wanted):
            return None
        fields = [schema.field(name) for name in self.select] if self.select is not None else list(schema)
        fields = [f for f in fields if f.name not in (self.drop or ())]
        return pa.schema([f.with_name((self.rename or {}).get(f.name, f.name)) for f in fields])

    def __call__(self, blocks: Blocks) -> Blocks:
        for block in blocks:
            if block.num_rows == 0 and not block.column_names:
                yield block  # an empty output (a group-less partition's) has no columns to pick
                continue
            wanted = [*(self.select or ()), *(self.drop or ()), *(self.rename or {})]
            missing = [name for name in wanted if name not in block.column_names]
            if missing:
                raise ValueError(
                    f"{self.name}: the columns {missing} are not in the dataset; its columns are "
                    f"{block.column_names}"
                )
            if self.select is not None:
                block = block.select(list(self.select))
            if self.drop is not None:
                block = block.drop_columns(list(self.drop))
            if self.rename is not None:
                block = block.rename_columns([self.rename.get(n, n) for n in block.column_names])
            yield block


def rebatch(blocks: Iterable[pa.Table], batch_size: int | None) -> Iterator[pa.Table]:
    """Tables of exactly ``batch_size`` rows (the last may be short) from a stream of blocks;
    ``None`` keeps each block whole."""
    if batch_size is None:
        yield from (block for block in blocks if block.num_rows)
        return
    pending: list[pa.Table] = []
    rows = 0
    for block in blocks:
        offset = 0
        while offset < block.num_rows:
            take = min(batch_size - rows, block.num_rows - offset)
            pending.append(block.slice(offset, take))
            rows += take
            offset += take
            if rows == batch_size:
                yield concat(pending)
                pending, rows = [], 0
    if rows:
        yield concat(pending)


def concat(tables: Sequence[pa.Table]) -> pa.Table:
    """Tables as one; columns missing in some become nulls, and types unify where Arrow can."""
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.concat_tables(tables, promote_options="permissive")


def shape_output(blocks: Blocks, target_max_block_size: int) -> Blocks:
    """A stage's output as blocks near the target size: small results of one task are
    joined, and a block far over the target is split by rows."""
    pending: list[pa.Table] = []
    size = 0
    for block in blocks:
        if block.num_rows == 0 and (pending or block.num_columns == 0):
            continue
        pending.append(block)
        size += block.nbytes
        if size >= target_max_block_size:
            yield from split_block(concat(pending), target_max_block_size)
            pending, size = [], 0
    if pending:
        yield from split_block(concat(pending), target_max_block_size)


def compact(block: pa.Table) -> pa.Table:
    """A block that owns only its rows. A slice shares its parent's buffers, and pickling
    it (to send it anywhere) would write the parent's whole buffers; the columns of a
    slice are copied into buffers of their own."""
    if block.get_total_buffer_size() <= block.nbytes + block.nbytes // 4 + 4096:
        return block
    columns = [pa.concat_arrays(column.chunks) if column.num_chunks else column for column in block.columns]
    return pa.Table.from_arrays(columns, schema=block.schema)


def split_block(block: pa.Table, target_max_block_size: int) -> Blocks:
    parts = max(1, -(-block.nbytes // max(target_max_block_size, 1)))
    if parts == 1 or block.num_rows <= 1:
        yield block
        return
    step = -(-block.num_rows // parts)
    for start in range(0, block.num_rows, step):
        yield block.slice(start, step)


def run_chain(chain: Sequence[Transform], blocks: Iterable[pa.Table], target_max_block_size: int) -> Blocks:
    stream: Blocks = iter(blocks)
    for transform in chain:
        stream = transform(stream)
    return shape_output(stream, target_max_block_size)
