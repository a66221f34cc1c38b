"""Reading Parquet: footers read once on the driver (schemas, row counts, sizes), then
each file scanned per batch with column projection and filter pushed into the scan."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from functools import reduce
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from manta.data._internal.tensors import ndarray_to_arrow
from manta.data.datasource.file_based import FileBasedDatasource
from manta.data.datasource.partitioning import Partitioning, PathPartitionParser

TensorColumnSchema = dict[str, tuple[Any, tuple[int, ...]]]
# Options of ``ParquetFileFragment.to_batches`` users may pass through ``**arrow_parquet_args``.
_SCAN_OPTIONS = frozenset(
    {
        "batch_size",
        "batch_readahead",
        "fragment_readahead",
        "fragment_scan_options",
        "use_threads",
        "cache_metadata",
    }
)
_TARGET_BLOCK_BYTES = 128 * 1024 * 1024


class ParquetDatasource(FileBasedDatasource):
    """Reads Parquet files (``read_parquet``).

    Files whose schemas differ are read with their union: a column missing from a file
    reads as nulls, and numeric types widen (as Ray). Hive partition values become
    string columns (typed by ``Partitioning.field_types``), after the data columns.

    Args:
        columns: Read only these columns (data or partition columns).
        tensor_column_schema: ``{column: (dtype, shape)}``: binary columns holding raw
            ndarray bytes, turned into tensor columns.
        arrow_parquet_args: ``filter`` (a ``pyarrow.dataset.Expression``, may name
            partition columns), ``schema`` (read every file as this schema) and
            options of ``ParquetFileFragment.to_batches`` such as ``batch_size``.
        Others: as ``FileBasedDatasource``.

    Raises:
        TypeError: two files' schemas cannot be unified (both are named), or an
            unknown option is passed.
        ValueError: a column in ``columns`` is in no file.
    """

    _READER_NAME = "read_parquet"

    def __init__(
        self,
        paths: str | list[str],
        *,
        columns: list[str] | None = None,
        tensor_column_schema: TensorColumnSchema | None = None,
        arrow_parquet_args: dict[str, Any] | None = None,
        partitioning: Partitioning | None = None,
        **file_based_args: Any,
    ) -> None:
        super().__init__(paths, partitioning=partitioning, **file_based_args)
        scan = dict(arrow_parquet_args or {})
        self._filter: pads.Expression | None = scan.pop("filter", None)
        user_schema: pa.Schema | None = scan.pop("schema", None)
        unknown = set(scan) - _SCAN_OPTIONS
        if unknown:
            raise TypeError(f"read_parquet got unsupported arrow_parquet_args {sorted(unknown)}")
        self._scan_options = scan
        self._columns = columns
        self._tensor_columns = dict(tensor_column_schema or {})
        footers = {path: _footer(self._filesystem, path) for path in self.paths}
        self._footers = {path: meta for path, meta in footers.items() if meta is not None}
        data_schema = user_schema or _unify(self._footers, self._READER_NAME)
        self._schema = _with_partition_fields(data_schema, self.paths, partitioning)
        if columns is not None and self._schema is not None:
            missing = [c for c in columns if c not in self._schema.names]
            if missing:
                raise ValueError(
                    f"read_parquet: columns {missing} are not in the files (columns: {self._schema.names})"
                )

    def supports_projection_pushdown(self) -> bool:
        return not self._tensor_columns and not self._include_paths

    def apply_projection(self, projection_map: dict[str, str] | None) -> ParquetDatasource:
        if projection_map is None:
            return self
        if any(k != v for k, v in projection_map.items()):
            raise ValueError(f"read_parquet cannot rename columns while reading: {projection_map}")
        projected = copy.copy(self)
        wanted = list(projection_map)
        projected._columns = wanted if self._columns is None else [c for c in self._columns if c in wanted]
        return projected

    def supports_predicate_pushdown(self) -> bool:
        return not self._tensor_columns and not self._include_paths

    def apply_predicate(self, predicate: pads.Expression) -> ParquetDatasource:
        filtered = copy.copy(self)
        filtered._filter = predicate if self._filter is None else self._filter & predicate
        return filtered

    def _size_bytes(self, files: list[tuple[str, int]]) -> int:
        # The footer's uncompressed size is closer to the size in memory than the file's.
        total = 0
        for path, size in files:
            meta = self._footers.get(path)
            total += (
                size
                if meta is None
                else sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
            )
        return total

    def _num_rows(self, paths: list[str]) -> int | None:
        if self._filter is not None or any(p not in self._footers for p in paths):
            return None
        return sum(self._footers[p].num_rows for p in paths)

    def _read_schema(self) -> pa.Schema | None:
        if self._schema is None:
            return None
        schema = (
            self._schema
            if self._columns is None
            else pa.schema([self._schema.field(c) for c in self._columns])
        )
        for name, (dtype, shape) in self._tensor_columns.items():
            tensor = pa.fixed_shape_tensor(pa.from_numpy_dtype(np.dtype(dtype)), list(shape))
            schema = schema.set(schema.get_field_index(name), pa.field(name, tensor))
        if self._include_paths:
            schema = schema.append(pa.field("path", pa.string()))
        return schema

    def _read_file(self, path: str, partitions: dict[str, Any]) -> Iterator[pa.Table]:
        expression = None
        if partitions:
            # The scan fills partition columns from this and prunes the filter with it.
            assert self._partitioning is not None
            terms = [
                pads.field(k) == pa.scalar(v, self._partitioning.arrow_type(k)) for k, v in partitions.items()
            ]
            expression = reduce(lambda a, b: a & b, terms)
        fragment = pads.ParquetFileFormat().make_fragment(
            path, filesystem=self._filesystem, partition_expression=expression
        )
        batches = fragment.to_batches(
            schema=self._schema, columns=self._columns, filter=self._filter, **self._scan_options
        )
        pending: list[pa.RecordBatch] = []
        for batch in batches:
            pending.append(batch)
            if sum(b.nbytes for b in pending) >= _TARGET_BLOCK_BYTES:
                yield self._to_table(pending)
                pending = []
        if pending:
            yield self._to_table(pending)

    def _to_table(self, batches: list[pa.RecordBatch]) -> pa.Table:
        table = pa.Table.from_batches(batches)
        for name, (dtype, shape) in self._tensor_columns.items():
            arrays = [np.frombuffer(v, dtype=dtype).reshape(shape) for v in table.column(name).to_pylist()]
            stacked = np.stack(arrays) if arrays else np.empty((0, *shape), dtype=dtype)
            tensor = ndarray_to_arrow(stacked)
            table = table.set_column(table.column_names.index(name), name, tensor)
        return table


def _footer(fs: Any, path: str) -> pq.FileMetaData | None:
    """A file's footer, or ``None`` if it cannot be read: such a file is reported by the
    read task that reads it, with the reader's name."""
    try:
        with fs.open_input_file(path) as f:
            return pq.read_metadata(f)
    except (pa.ArrowException, OSError):
        return None


def _unify(footers: dict[str, pq.FileMetaData], reader: str) -> pa.Schema | None:
    merged: pa.Schema | None = None
    origin: dict[str, str] = {}
    for path, meta in footers.items():
        schema = meta.schema.to_arrow_schema()
        try:
            merged = (
                schema if merged is None else pa.unify_schemas([merged, schema], promote_options="permissive")
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise TypeError(_conflict(merged, schema, origin, path, reader, e)) from e
        for name in schema.names:
            origin.setdefault(name, path)
    return merged


def _conflict(
    merged: pa.Schema | None,
    schema: pa.Schema,
    origin: dict[str, str],
    path: str,
    reader: str,
    error: Exception,
) -> str:
    assert merged is not None
    for f in schema:
        if f.name in merged.names and merged.field(f.name).type != f.type:
            other = origin[f.name]
            return (
                f"{reader}: the schemas of {other} and {path} cannot be unified: column {f.name!r} is "
                f"{merged.field(f.name).type} in {other} and {f.type} in {path}"
            )
    return f"{reader}: the schema of {path} cannot be unified with the files before it: {error}"


def _with_partition_fields(
    schema: pa.Schema | None, paths: list[str], partitioning: Partitioning | None
) -> pa.Schema | None:
    if schema is None or partitioning is None:
        return schema
    parser = PathPartitionParser(partitioning)
    for path in paths:
        for key in parser(path):
            if key not in schema.names:
                schema = schema.append(pa.field(key, partitioning.arrow_type(key)))
    return schema
