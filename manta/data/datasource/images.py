"""Reading image files with Pillow: one row per image, in an ``image`` tensor column of
shape ``(height, width[, channels])``."""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from manta.data._internal.tensors import ndarray_to_arrow
from manta.data.datasource.file_based import FileBasedDatasource

IMAGE_EXTENSIONS = ["png", "jpg", "jpeg", "tif", "tiff", "bmp", "gif"]


def require_pillow() -> None:
    """Raises:
    ImportError: Pillow is not installed (reading images needs it)."""
    if importlib.util.find_spec("PIL") is None:
        raise ImportError(
            "read_images needs Pillow, which is not installed. Install it with `pip install Pillow`."
        )


class ImageDatasource(FileBasedDatasource):
    """Reads images (``read_images``).

    Args:
        size: ``(height, width)`` to resize every image to; ``None`` keeps each size.
        mode: A Pillow mode (``"RGB"``, ``"L"``…) to convert every image to.
        Others: as ``FileBasedDatasource``.

    Raises:
        ImportError: Pillow is not installed.
        ValueError: ``size`` is not two positive ints.
    """

    _READER_NAME = "read_images"

    def __init__(
        self,
        paths: str | list[str],
        *,
        size: tuple[int, int] | None = None,
        mode: str | None = None,
        **file_based_args: Any,
    ) -> None:
        require_pillow()
        if size is not None and (len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size)):
            raise ValueError(f"size must be a (height, width) pair of positive ints, got {size!r}")
        super().__init__(paths, **file_based_args)
        self._size = size
        self._mode = mode

    def _read_stream(self, stream: pa.NativeFile, path: str) -> Iterator[pa.Table]:
        from PIL import Image

        try:
            image: Any = Image.open(io.BytesIO(stream.read()))
        except OSError as e:
            # Pillow reports a file it cannot decode as an OSError; it is a format error.
            raise ValueError(str(e)) from e
        if self._mode is not None:
            image = image.convert(self._mode)
        if self._size is not None:
            height, width = self._size
            image = image.resize((width, height))
        yield pa.table({"image": ndarray_to_arrow(np.stack([np.asarray(image)]))})
