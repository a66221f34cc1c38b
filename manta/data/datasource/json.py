"""Reading JSON with ``pyarrow.json``: newline-delimited records, or (as Ray) a file
holding one JSON array of records."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.json as pajson

from manta.data.datasource.file_based import FileBasedDatasource

_OPTIONS = frozenset({"read_options", "parse_options", "memory_pool"})


class JSONDatasource(FileBasedDatasource):
    """Reads JSON files (``read_json``).

    Args:
        lines: The files are newline-delimited JSON; when ``False`` (Ray's default) a
            file may also be one JSON array of objects.
        arrow_json_args: ``read_options`` and ``parse_options`` of
            ``pyarrow.json.read_json``.
        Others: as ``FileBasedDatasource``.

    Raises:
        TypeError: an unknown option is passed.
    """

    _READER_NAME = "read_json"

    def __init__(
        self,
        paths: str | list[str],
        *,
        lines: bool = False,
        arrow_json_args: dict[str, Any] | None = None,
        **file_based_args: Any,
    ) -> None:
        super().__init__(paths, **file_based_args)
        args = dict(arrow_json_args or {})
        unknown = set(args) - _OPTIONS
        if unknown:
            raise TypeError(f"read_json got unsupported arrow_json_args {sorted(unknown)}")
        self._lines = lines
        self._json_args = args

    def _read_stream(self, stream: pa.NativeFile, path: str) -> Iterator[pa.Table]:
        data = stream.read_buffer()
        if data.size == 0:
            return
        args = dict(self._json_args)
        # A record larger than a block makes Arrow fail; a block of the whole file cannot.
        args.setdefault(
            "read_options", pajson.ReadOptions(use_threads=False, block_size=max(data.size, 1 << 20))
        )
        try:
            yield pajson.read_json(io.BytesIO(data), **args)
        except pa.ArrowInvalid as arrow_error:
            if self._lines:
                raise
            yield _read_json_array(data, arrow_error)


def _read_json_array(data: pa.Buffer, arrow_error: Exception) -> pa.Table:
    try:
        records = json.loads(data.to_pybytes())
    except ValueError:
        raise arrow_error from None
    if isinstance(records, dict):
        records = [records]
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ValueError("expected JSON objects, one per line, or one JSON array of objects")
    return pa.Table.from_pylist(records)
