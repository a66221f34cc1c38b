"""Writing Parquet with ``pyarrow.dataset.write_dataset``: hive partition directories,
file size limits and row group sizes handled by Arrow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads

from manta.data.datasource.file_sinks import FILE_SINK_ARGS, FileDatasink, resolve_args
from manta.data.datasource.save_mode import SaveMode

# Arrow's default; a minimum above it must raise the maximum too or Arrow refuses it.
_ARROW_MAX_ROWS_PER_GROUP = 1024 * 1024


class ParquetDatasink(FileDatasink):
    """Writes Parquet files (``Dataset.write_parquet``).

    Each write task writes ``{write_uuid}_{task_index:06}-{i}.parquet`` files (``i``
    counts files when ``max_rows_per_file`` splits them), under hive directories
    ``col=value/`` when ``partition_cols`` is given, as Ray 2.60. Tensor columns are
    written as Arrow's ``fixed_shape_tensor`` extension type.

    Args:
        partition_cols: Columns to partition the output directories by.
        catalog: Not supported (``NotImplementedError`` if given).
        arrow_parquet_args_fn: Returns Parquet writer options; called in each task.
        max_rows_per_file: Split a task's rows into files of at most this many rows.
        min_bytes_per_file: Accepted and checked as Ray does; the executor does not
            gather input by bytes.
        arrow_parquet_args: Parquet writer options (``compression``,
            ``row_group_size``…), ``schema`` to write, ``partitioning_flavor``.
        Others: as ``FileDatasink``.
    """

    def __init__(
        self,
        path: str,
        *,
        partition_cols: list[str] | None = None,
        catalog: Any = None,
        arrow_parquet_args_fn: Callable[[], dict[str, Any]] | None = None,
        max_rows_per_file: int | None = None,
        min_bytes_per_file: int | None = None,
        **sink_args: Any,
    ) -> None:
        if catalog is not None:
            raise NotImplementedError("write_parquet(catalog=...) is not supported by Manta")
        parquet_args = {k: sink_args.pop(k) for k in list(sink_args) if k not in FILE_SINK_ARGS}
        super().__init__(path, file_format="parquet", **sink_args)
        if "compression" in self._open_stream_args:
            # As Ray: a stream compression asked for applies to the Parquet pages instead.
            parquet_args.setdefault("compression", self._open_stream_args["compression"])
        min_rows = self.min_rows_per_write
        if min_bytes_per_file is not None and min_bytes_per_file <= 0:
            raise ValueError("min_bytes_per_file must be a positive integer")
        if min_bytes_per_file is not None and (min_rows is not None or max_rows_per_file is not None):
            raise ValueError("min_bytes_per_file cannot be used with min_rows_per_file or max_rows_per_file")
        if min_rows is not None and max_rows_per_file is not None and min_rows > max_rows_per_file:
            raise ValueError("min_rows_per_file must be less than or equal to max_rows_per_file")
        if "partitioning_flavor" in parquet_args and not partition_cols:
            raise ValueError("partition_cols must be provided when partitioning_flavor is set.")
        self._partition_cols = partition_cols
        self._max_rows_per_file = max_rows_per_file
        self._args_fn = arrow_parquet_args_fn
        self._parquet_args = parquet_args

    def write_table(self, table: pa.Table, filename: str) -> None:
        args = resolve_args(self._args_fn, self._parquet_args)
        schema = args.pop("schema", None)
        flavor = args.pop("partitioning_flavor", "hive")
        if schema is not None:
            table = table.select(schema.names).cast(schema)
        min_group, max_group, max_file = row_group_limits(
            args.pop("row_group_size", None), self.min_rows_per_write, self._max_rows_per_file
        )
        pads.write_dataset(
            table,
            base_dir=self.path,
            basename_template=self._basename_template(filename),
            format="parquet",
            filesystem=self.filesystem,
            partitioning=self._partition_cols,
            partitioning_flavor=flavor,
            existing_data_behavior="overwrite_or_ignore",
            min_rows_per_group=min_group or 0,
            max_rows_per_group=max_group or _ARROW_MAX_ROWS_PER_GROUP,
            max_rows_per_file=max_file or 0,
            file_options=pads.ParquetFileFormat().make_write_options(**args),
            create_dir=self._try_create_dir,
        )

    def _basename_template(self, filename: str) -> str:
        if self.write_uuid not in filename and self._mode == SaveMode.APPEND:
            raise ValueError(
                f"The file name {filename!r} lacks the write UUID {self.write_uuid!r}, so appending could "
                "overwrite earlier files: include write_uuid in your FilenameProvider's names or use "
                "mode='overwrite'."
            )
        if "{i}" in filename:
            return filename if filename.endswith(".parquet") else f"{filename}.parquet"
        stem = filename[: -len(".parquet")] if filename.endswith(".parquet") else filename
        return f"{stem}-{{i}}.parquet"


def row_group_limits(
    row_group_size: int | None, min_rows_per_file: int | None, max_rows_per_file: int | None
) -> tuple[int | None, int | None, int | None]:
    """``(min_rows_per_group, max_rows_per_group, max_rows_per_file)`` for Arrow's
    writer, from the user's row group size and file limits (as Ray chooses them)."""
    if row_group_size is None:
        if (
            min_rows_per_file is not None
            and max_rows_per_file is None
            and min_rows_per_file > _ARROW_MAX_ROWS_PER_GROUP
        ):
            return min_rows_per_file, min_rows_per_file, min_rows_per_file
        return min_rows_per_file, max_rows_per_file, max_rows_per_file
    if min_rows_per_file is None or max_rows_per_file is None:
        return row_group_size, row_group_size, max_rows_per_file
    clamped = max(min_rows_per_file, min(row_group_size, max_rows_per_file))
    return clamped, clamped, max_rows_per_file
