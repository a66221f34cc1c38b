"""Reading ``.npy`` files: one row per element of the first axis, in a ``data`` column
(a tensor column when the rows are arrays)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from manta.data._internal.tensors import ndarray_to_arrow
from manta.data.datasource.file_based import FileBasedDatasource


class NumpyDatasource(FileBasedDatasource):
    """Reads ``.npy`` files (``read_numpy``).

    Args:
        allow_pickle: Allow object arrays (unpickling runs code from the file).
        numpy_load_args: Other keyword arguments of ``numpy.load``.
        Others: as ``FileBasedDatasource``.
    """

    _READER_NAME = "read_numpy"

    def __init__(
        self,
        paths: str | list[str],
        *,
        allow_pickle: bool = False,
        numpy_load_args: dict[str, Any] | None = None,
        **file_based_args: Any,
    ) -> None:
        super().__init__(paths, **file_based_args)
        args = dict(numpy_load_args or {})
        if "allow_pickle" in args:
            raise ValueError("Pass allow_pickle to read_numpy itself, not in numpy_load_args")
        self._allow_pickle = allow_pickle
        self._load_args = args

    def _read_stream(self, stream: pa.NativeFile, path: str) -> Iterator[pa.Table]:
        # numpy.load needs a seekable file; a (possibly decompressing) stream is not.
        array = np.load(io.BytesIO(stream.read()), allow_pickle=self._allow_pickle, **self._load_args)
        if not isinstance(array, np.ndarray):
            raise ValueError(f"expected a .npy file holding one array, got {type(array).__name__}")
        yield pa.table({"data": ndarray_to_arrow(np.atleast_1d(array))})
