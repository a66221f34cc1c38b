"""Reading CSV files with ``pyarrow.csv``, streamed a batch at a time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from manta.data.datasource.file_based import FileBasedDatasource

_OPTIONS = frozenset({"read_options", "parse_options", "convert_options", "memory_pool"})


class CSVDatasource(FileBasedDatasource):
    """Reads CSV files (``read_csv``).

    Args:
        arrow_csv_args: ``read_options``, ``parse_options`` and ``convert_options`` of
            ``pyarrow.csv.open_csv``.
        Others: as ``FileBasedDatasource``.

    Raises:
        TypeError: an unknown option is passed.
    """

    _READER_NAME = "read_csv"

    def __init__(
        self, paths: str | list[str], *, arrow_csv_args: dict[str, Any] | None = None, **file_based_args: Any
    ):
        super().__init__(paths, **file_based_args)
        args = dict(arrow_csv_args or {})
        unknown = set(args) - _OPTIONS
        if unknown:
            raise TypeError(f"read_csv got unsupported arrow_csv_args {sorted(unknown)}")
        # Read tasks already run in parallel; Arrow's own threads would oversubscribe.
        args.setdefault("read_options", pacsv.ReadOptions(use_threads=False))
        self._csv_args = args

    def _read_stream(self, stream: pa.NativeFile, path: str) -> Iterator[pa.Table]:
        reader = pacsv.open_csv(stream, **self._csv_args)
        schema = reader.schema
        yielded = False
        for batch in reader:
            yielded = True
            yield pa.Table.from_batches([batch], schema=schema)
        if not yielded:
            # A header-only file still tells the columns.
            yield schema.empty_table()
