"""Any buffer-protocol object as a flat byte view, so copying it is one memcpy."""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, TypeAlias, cast

if TYPE_CHECKING:
    from typing import TypeAlias

    from _typeshed import ReadableBuffer

# Anything that exports the buffer protocol. Not typeshed's ReadableBuffer: numpy arrays
# declare ``__buffer__`` only when type-checked for Python 3.12+, and we target 3.10.
BufferLike: TypeAlias = object


def byte_view(buffer: BufferLike) -> memoryview:
    """A 1-D unsigned-byte view of ``buffer`` (numpy array, bytes, PickleBuffer, ...),
    without copying. Raises ValueError for a non-contiguous buffer."""
    if isinstance(buffer, memoryview) and buffer.format == "B" and buffer.ndim == 1 and buffer.contiguous:
        return buffer
    try:
        # PickleBuffer.raw() flattens C- and Fortran-contiguous buffers of any format.
        return pickle.PickleBuffer(cast("ReadableBuffer", buffer)).raw()
    except BufferError:
        raise ValueError("buffer is not contiguous; copy it (e.g. numpy.ascontiguousarray) first") from None


def copy_into(dest: memoryview, offset: int, buffer: BufferLike) -> int:
    """Copy ``buffer`` into ``dest`` at ``offset`` with one memcpy; returns its length."""
    src = byte_view(buffer)
    end = offset + src.nbytes
    if offset < 0 or end > dest.nbytes:
        raise ValueError(f"{src.nbytes} bytes at offset {offset} do not fit in {dest.nbytes} bytes")
    dest[offset:end] = src
    return src.nbytes
