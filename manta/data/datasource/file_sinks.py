"""Writing a dataset as files in a directory: one file per write task (all its blocks
together), named by a ``FilenameProvider``, as in Ray 2.60."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs

from manta.data._internal.tensors import PythonObjectType, column_to_numpy
from manta.data.datasource.datasink import Datasink, TaskContext, WriteResult
from manta.data.datasource.filename_provider import FilenameProvider
from manta.data.datasource.paths import resolve_paths_and_filesystem
from manta.data.datasource.save_mode import SaveMode


class FileDatasink(Datasink[None]):
    """The base of the file writers: resolves the output directory, applies the save
    mode, creates the directory, gathers each task's blocks and names its file.

    Args:
        path: The directory to write into (a local path or URI).
        filesystem: A ``pyarrow.fs.FileSystem`` or an ``fsspec`` filesystem.
        try_create_dir: Create the directory if it is missing.
        arrow_open_stream_args: Passed to ``filesystem.open_output_stream``.
        filename_provider: Chooses file names (default: see ``FilenameProvider``).
        min_rows_per_file: Rows to gather before a write task runs (a hint to the
            executor); ``num_rows_per_file`` is Ray's deprecated name for it.
        mode: A ``SaveMode`` (or its string value).
        dataset_uuid: Prefixes the default file names.
        file_format: The extension of the default file names.

    Raises:
        ValueError: a bad argument; ``mode`` is ``"error"``/``"create"`` and the
            directory exists (at ``on_write_start``); a block has a column of Python
            objects (at ``write``).
    """

    def __init__(
        self,
        path: str,
        *,
        filesystem: Any = None,
        try_create_dir: bool = True,
        arrow_open_stream_args: dict[str, Any] | None = None,
        filename_provider: FilenameProvider | None = None,
        min_rows_per_file: int | None = None,
        num_rows_per_file: int | None = None,
        mode: SaveMode | str = SaveMode.APPEND,
        dataset_uuid: str | None = None,
        file_format: str | None = None,
    ) -> None:
        if not isinstance(path, str):
            raise ValueError(f"path must be a str (a directory), got {path!r}")
        paths, self._filesystem = resolve_paths_and_filesystem(path, filesystem)
        self.path = paths[0]
        self._mode = SaveMode(mode)
        if self._mode == SaveMode.UPSERT:
            raise ValueError(
                "mode='upsert' needs keys; file writes support append, overwrite, ignore and error"
            )
        if min_rows_per_file is not None and num_rows_per_file is not None:
            raise ValueError("Pass min_rows_per_file or its deprecated name num_rows_per_file, not both")
        self._min_rows_per_file = min_rows_per_file if min_rows_per_file is not None else num_rows_per_file
        self._try_create_dir = try_create_dir
        self._open_stream_args = dict(arrow_open_stream_args or {})
        self.filename_provider = filename_provider or FilenameProvider(dataset_uuid, file_format)
        self.write_uuid = uuid.uuid4().hex
        self._skip_write = False
        self._created_dir = False

    @property
    def filesystem(self) -> pafs.FileSystem:
        return self._filesystem

    @property
    def min_rows_per_write(self) -> int | None:
        return self._min_rows_per_file

    def on_write_start(self) -> None:
        # A fresh id per write, so that writing twice into one directory never clobbers.
        self.write_uuid = uuid.uuid4().hex
        exists = self._filesystem.get_file_info(self.path).type != pafs.FileType.NotFound
        if exists and self._mode in (SaveMode.ERROR, SaveMode.CREATE):
            raise ValueError(f"Path {self.path} already exists. Use mode='append', 'overwrite' or 'ignore'.")
        if exists and self._mode == SaveMode.IGNORE:
            self._skip_write = True
            return
        if exists and self._mode == SaveMode.OVERWRITE:
            self._filesystem.delete_dir_contents(self.path)
        if self._try_create_dir and not exists:
            self._filesystem.create_dir(self.path, recursive=True)
            self._created_dir = True

    def on_write_complete(self, write_result: WriteResult[None]) -> None:
        # As Ray: a write of nothing leaves no empty directory behind.
        if self._created_dir and write_result.num_rows == 0:
            self._filesystem.delete_dir(self.path)

    def write(self, blocks: Iterable[pa.Table], ctx: TaskContext) -> None:
        """Write all of this task's rows to one file (none if there are no rows)."""
        if self._skip_write:
            return
        tables = [t for t in blocks if t.num_rows > 0]
        if not tables:
            return
        table = self.select_columns(pa.concat_tables(tables, promote_options="default"))
        refuse_object_columns(table)
        filename = self.filename_provider.get_filename_for_task(self.write_uuid, ctx.task_idx)
        self.write_table(table, filename)

    def select_columns(self, table: pa.Table) -> pa.Table:
        """The columns this sink writes; all by default."""
        return table

    def write_table(self, table: pa.Table, filename: str) -> None:
        """Write one task's rows as ``filename`` in the directory."""
        with self._filesystem.open_output_stream(
            f"{self.path}/{filename}", **self._open_stream_args
        ) as stream:
            self.write_table_to_file(table, stream)

    def write_table_to_file(self, table: pa.Table, stream: pa.NativeFile) -> None:
        raise NotImplementedError


def refuse_object_columns(table: pa.Table) -> None:
    """Raises:
    ValueError: ``table`` has a ``PythonObjectType`` column (pickles that no file
        format can hold), naming it."""
    for field in table.schema:
        if isinstance(field.type, PythonObjectType):
            raise ValueError(
                f"Column {field.name!r} holds arbitrary Python objects, and such columns cannot be "
                "written to files. Convert it to numbers, strings, lists or same-shaped ndarrays first."
            )


def resolve_args(args_fn: Callable[[], dict[str, Any]] | None, args: dict[str, Any]) -> dict[str, Any]:
    """Writer options: those from ``args_fn`` (called in the worker, for options that
    do not pickle) overridden by ``args``."""
    return {**(args_fn() if args_fn is not None else {}), **args}


class CSVDatasink(FileDatasink):
    """Writes CSV files with ``pyarrow.csv.write_csv`` (``Dataset.write_csv``).

    Args:
        arrow_csv_args_fn: Returns ``pyarrow.csv.write_csv`` options (e.g.
            ``write_options``); called in each write task.
        arrow_csv_args: More such options.
        Others: as ``FileDatasink``.
    """

    def __init__(
        self,
        path: str,
        *,
        arrow_csv_args_fn: Callable[[], dict[str, Any]] | None = None,
        file_format: str = "csv",
        **sink_args: Any,
    ) -> None:
        csv_args = {k: sink_args.pop(k) for k in list(sink_args) if k not in FILE_SINK_ARGS}
        super().__init__(path, file_format=file_format, **sink_args)
        self._args_fn = arrow_csv_args_fn
        self._csv_args = csv_args

    def write_table_to_file(self, table: pa.Table, stream: pa.NativeFile) -> None:
        args = resolve_args(self._args_fn, self._csv_args)
        pacsv.write_csv(table, stream, args.pop("write_options", None), **args)


class JSONDatasink(FileDatasink):
    """Writes JSON lines (one object per row) with pandas, as Ray's ``write_json``.

    Args:
        pandas_json_args_fn: Returns ``pandas.DataFrame.to_json`` options; called in
            each write task. ``orient="records"`` and ``lines=True`` by default.
        pandas_json_args: More such options.
        Others: as ``FileDatasink``.
    """

    def __init__(
        self,
        path: str,
        *,
        pandas_json_args_fn: Callable[[], dict[str, Any]] | None = None,
        file_format: str = "json",
        **sink_args: Any,
    ) -> None:
        json_args = {k: sink_args.pop(k) for k in list(sink_args) if k not in FILE_SINK_ARGS}
        super().__init__(path, file_format=file_format, **sink_args)
        self._args_fn = pandas_json_args_fn
        self._json_args = json_args

    def write_table_to_file(self, table: pa.Table, stream: pa.NativeFile) -> None:
        args = resolve_args(self._args_fn, self._json_args)
        orient = args.pop("orient", "records")
        lines = args.pop("lines", True)
        frame = table.to_pandas()
        for name in table.column_names:
            if isinstance(table.schema.field(name).type, pa.FixedShapeTensorType):
                frame[name] = [a.tolist() for a in column_to_numpy(table.column(name))]
        text = frame.to_json(orient=orient, lines=lines, **args)
        stream.write(text.encode("utf-8"))


class NumpyDatasink(FileDatasink):
    """Writes one column as ``.npy`` files, one array per task (``Dataset.write_numpy``).

    Args:
        column: The column to write.
        Others: as ``FileDatasink``.
    """

    def __init__(self, path: str, *, column: str, file_format: str = "npy", **sink_args: Any) -> None:
        super().__init__(path, file_format=file_format, **sink_args)
        self.column = column

    def select_columns(self, table: pa.Table) -> pa.Table:
        if self.column not in table.column_names:
            raise ValueError(f"write_numpy: no column {self.column!r} (columns: {table.column_names})")
        return table.select([self.column])

    def write_table_to_file(self, table: pa.Table, stream: pa.NativeFile) -> None:
        np.save(stream, column_to_numpy(table.column(self.column)))


# The constructor arguments of FileDatasink; subclasses pass every other keyword to their writer.
FILE_SINK_ARGS = frozenset(
    {
        "filesystem",
        "try_create_dir",
        "arrow_open_stream_args",
        "filename_provider",
        "min_rows_per_file",
        "num_rows_per_file",
        "mode",
        "dataset_uuid",
    }
)
