"""The base of every file reader: list the files once on the driver, split them into
read tasks, and read each file in a worker, adding partition and path columns.

A subclass says how to read one file: ``_read_stream`` for formats read front to back
(CSV, JSON, text; compression is detected from the extension), or ``_read_file`` for
formats that need random access (Parquet).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.fs as pafs

from manta.data.block import BlockMetadata
from manta.data.datasource.datasource import Datasource, ReadTask
from manta.data.datasource.partitioning import (
    Partitioning,
    PathPartitionFilter,
    PathPartitionParser,
    add_partition_columns,
)
from manta.data.datasource.paths import expand_paths, has_file_extension, resolve_paths_and_filesystem

T = TypeVar("T")
_LISTING_NOTE = "Note that listing skips names starting with '_' or '.'."


class FileBasedDatasource(Datasource):
    """Reads a set of files, a group of whole files per read task.

    Args:
        paths: Files, directories (read recursively), glob patterns or URIs.
        filesystem: A ``pyarrow.fs.FileSystem`` or an ``fsspec`` filesystem.
        open_stream_args: Passed to ``filesystem.open_input_stream``/``open_input_file``.
        partition_filter: Skips files by their path's partition values.
        partitioning: How to read partition values from paths; they become columns.
        ignore_missing_paths: Skip paths that do not exist instead of raising.
        include_paths: Add a ``path`` column holding each row's file.
        file_extensions: Read only files with these extensions (``None``: all).

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: no file is left to read after listing and filtering.
    """

    # The public function named in errors ("read_csv could not read …").
    _READER_NAME = "read_datasource"

    def __init__(
        self,
        paths: str | list[str],
        *,
        filesystem: Any = None,
        open_stream_args: dict[str, Any] | None = None,
        partition_filter: PathPartitionFilter | None = None,
        partitioning: Partitioning | None = None,
        ignore_missing_paths: bool = False,
        include_paths: bool = False,
        file_extensions: list[str] | None = None,
    ) -> None:
        resolved, self._filesystem = resolve_paths_and_filesystem(paths, filesystem)
        files = expand_paths(resolved, self._filesystem, ignore_missing_paths)
        if not files:
            missing = " Paths that do not exist were skipped (ignore_missing_paths=True)."
            raise ValueError(
                f"No files found under {resolved}. {_LISTING_NOTE}"
                + (missing if ignore_missing_paths else "")
            )
        if partition_filter is not None:
            files = [(p, s) for p, s in files if partition_filter.apply(p)]
            if not files:
                raise ValueError(
                    "No input files found to read. Check that 'partition_filter' is set properly."
                )
        if file_extensions is not None:
            files = [(p, s) for p, s in files if has_file_extension(p, file_extensions)]
            if not files:
                raise ValueError(
                    f"No input files found to read with the file extensions {file_extensions} "
                    f"under {resolved}. Check that 'file_extensions' is set properly."
                )
        self._files: list[tuple[str, int]] = files
        self._open_stream_args = dict(open_stream_args or {})
        self._partitioning = partitioning
        self._include_paths = include_paths

    @property
    def paths(self) -> list[str]:
        """The files this datasource reads, after listing and filtering."""
        return [path for path, _ in self._files]

    def estimate_inmemory_data_size(self) -> int | None:
        return self._size_bytes(self._files)

    def get_read_tasks(self, parallelism: int) -> list[ReadTask]:
        """At most ``parallelism`` tasks (never more than files), each reading a run of
        consecutive files; ``metadata.size_bytes`` is their size on disk."""
        # Each task pickles its reader; leave the full file list out of it.
        reader = copy.copy(self)
        reader._files = []
        tasks = []
        for group in split_evenly(self._files, parallelism):
            paths = [path for path, _ in group]
            metadata = BlockMetadata(
                num_rows=self._num_rows(paths),
                size_bytes=self._size_bytes(group),
                input_files=tuple(paths),
            )
            tasks.append(ReadTask(_ReadFiles(reader, paths), metadata, self._read_schema()))
        return tasks

    def _num_rows(self, paths: list[str]) -> int | None:
        """Rows in these files where known before reading."""
        return None

    def _size_bytes(self, files: list[tuple[str, int]]) -> int:
        return sum(size for _, size in files)

    def _read_schema(self) -> pa.Schema | None:
        """The blocks' schema where known before reading."""
        return None

    def _read_file(self, path: str, partitions: dict[str, Any]) -> Iterator[pa.Table]:
        """The tables in one file, with its partition columns; by default, open it as a
        stream (decompressing by extension) and call ``_read_stream``."""
        args = {"compression": "detect", **self._open_stream_args}
        with self._filesystem.open_input_stream(path, **args) as stream:
            for table in self._read_stream(stream, path):
                if partitions:
                    assert self._partitioning is not None
                    table = add_partition_columns(table, partitions, self._partitioning)
                yield table

    def _read_stream(self, stream: pa.NativeFile, path: str) -> Iterator[pa.Table]:
        raise NotImplementedError

    def read_paths(self, paths: list[str]) -> Iterator[pa.Table]:
        """Read ``paths`` (run by a read task in a worker).

        Raises:
            ValueError: a file could not be parsed; the message names the reader and
                the file.
        """
        parser = PathPartitionParser(self._partitioning) if self._partitioning is not None else None
        for path in paths:
            partitions = parser(path) if parser is not None else {}
            try:
                for table in self._read_file(path, partitions):
                    if self._include_paths:
                        table = table.append_column("path", pa.array([path] * table.num_rows, pa.string()))
                    yield table
            except (pa.ArrowException, ValueError, TypeError) as e:
                if isinstance(e, OSError):
                    raise
                raise ValueError(f"{self._READER_NAME} could not read {path}: {e}") from e

    @property
    def filesystem(self) -> pafs.FileSystem:
        return self._filesystem


class _ReadFiles:
    """A read task's function: picklable, holding a reader and its files."""

    def __init__(self, reader: FileBasedDatasource, paths: list[str]) -> None:
        self._reader = reader
        self._paths = paths

    def __call__(self) -> Iterator[pa.Table]:
        return self._reader.read_paths(self._paths)


def split_evenly(items: Sequence[T], parts: int) -> list[list[T]]:
    """``items`` in ``min(parts, len(items))`` consecutive runs whose lengths differ by
    at most one, longer runs first (as ``numpy.array_split``)."""
    count = min(parts, len(items))
    base, extra = divmod(len(items), count) if count else (0, 0)
    runs, start = [], 0
    for i in range(count):
        end = start + base + (1 if i < extra else 0)
        runs.append(list(items[start:end]))
        start = end
    return runs
