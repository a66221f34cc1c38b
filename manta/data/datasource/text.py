"""Reading whole files as text lines (``read_text``) or as bytes (``read_binary_files``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from manta.data.datasource.file_based import FileBasedDatasource


class TextDatasource(FileBasedDatasource):
    """One row per line, in a ``text`` column.

    Args:
        drop_empty_lines: Skip lines that are empty or only whitespace.
        encoding: How the files are encoded.
        Others: as ``FileBasedDatasource``.
    """

    _READER_NAME = "read_text"

    def __init__(
        self,
        paths: str | list[str],
        *,
        drop_empty_lines: bool = True,
        encoding: str = "utf-8",
        **file_based_args: Any,
    ) -> None:
        super().__init__(paths, **file_based_args)
        self._drop_empty_lines = drop_empty_lines
        self._encoding = encoding

    def _read_stream(self, stream: pa.NativeFile, path: str) -> Iterator[pa.Table]:
        lines = stream.read().decode(self._encoding).splitlines()
        if self._drop_empty_lines:
            lines = [line for line in lines if line.strip()]
        yield pa.table({"text": pa.array(lines, pa.string())})


class BinaryDatasource(FileBasedDatasource):
    """One row per file, its contents in a ``bytes`` column."""

    _READER_NAME = "read_binary_files"

    def _read_stream(self, stream: pa.NativeFile, path: str) -> Iterator[pa.Table]:
        yield pa.table({"bytes": pa.array([stream.read()], pa.binary())})
