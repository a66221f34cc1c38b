"""The bytes of one stored object: a header, the pickle stream, then aligned buffers.

    offset 0   magic b"MNT1" | flags u32 | data length u64 | buffer count u64   (24 bytes)
    24         buffer table: (offset u64, length u64) per buffer, offsets from the start
    24+16n     the in-band pickle stream (``data``)
    aligned    buffer 0, buffer 1, ... each on a 64-byte boundary (a page, if large)

All integers little-endian. An object is the same bytes in the arena and in a spill file.
Objects start 64-byte aligned in the arena, so every buffer is 64-byte aligned in memory
too, as numpy and Arrow prefer. Reading returns views of the given view: zero copies, and
read-only when the view is.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from manta._private.object_store.allocator import ALIGNMENT, aligned
from manta._private.object_store.arena import PAGE
from manta._private.object_store.buffers import BufferLike, byte_view, copy_into

MAGIC = b"MNT1"
_HEADER = struct.Struct("<4sIQQ")
_ENTRY = struct.Struct("<QQ")
HEADER_SIZE = _HEADER.size


# Buffers this large start on a page boundary (relative to the object, which the node's
# store places on a page boundary): copying a large buffer to a 64-byte-aligned address
# that is not page-aligned ran at a third of memcpy speed on this machine.
PAGE_ALIGN_FROM = 64 * 1024


def _buffer_offsets(data_len: int, buffer_sizes: Sequence[int]) -> tuple[list[int], int]:
    """Where each buffer starts, and the total size (always a multiple of 64)."""
    pos = aligned(HEADER_SIZE + _ENTRY.size * len(buffer_sizes) + data_len, ALIGNMENT)
    offsets = []
    for size in buffer_sizes:
        if size >= PAGE_ALIGN_FROM:
            pos = aligned(pos, PAGE)
        offsets.append(pos)
        pos = aligned(pos + size, ALIGNMENT)
    return offsets, pos


def layout_size(data_len: int, buffer_sizes: Sequence[int]) -> int:
    """Bytes an object with this pickle stream and these buffers takes in the store."""
    return _buffer_offsets(data_len, buffer_sizes)[1]


def write_object(dest: memoryview, flags: int, data: BufferLike, buffers: Sequence[BufferLike]) -> int:
    """Lay the object out at the start of ``dest`` (one memcpy per buffer); returns its
    ``layout_size``. Raises ValueError if ``dest`` is too small."""
    dest = byte_view(dest)
    data_view = byte_view(data)
    views = [byte_view(b) for b in buffers]
    offsets, size = _buffer_offsets(data_view.nbytes, [v.nbytes for v in views])
    if size > dest.nbytes:
        raise ValueError(f"the object needs {size} bytes, the destination has {dest.nbytes}")
    _HEADER.pack_into(dest, 0, MAGIC, flags, data_view.nbytes, len(views))
    pos = HEADER_SIZE
    for offset, view in zip(offsets, views, strict=True):
        _ENTRY.pack_into(dest, pos, offset, view.nbytes)
        pos += _ENTRY.size
    copy_into(dest, pos, data_view)
    for offset, view in zip(offsets, views, strict=True):
        copy_into(dest, offset, view)
    return size


def read_object(view: memoryview) -> tuple[int, memoryview, list[memoryview]]:
    """(flags, pickle stream, buffers) of the object at the start of ``view``, as views
    of it. Raises ValueError if the bytes are not a whole object."""
    view = byte_view(view)
    if view.nbytes < HEADER_SIZE:
        raise ValueError(f"{view.nbytes} bytes are too few for an object header")
    magic, flags, data_len, count = _HEADER.unpack_from(view, 0)
    if magic != MAGIC:
        raise ValueError(f"not a Manta object (magic {bytes(magic)!r})")
    data_start = HEADER_SIZE + _ENTRY.size * count
    if data_start + data_len > view.nbytes:
        raise ValueError(f"object truncated: header says {data_start + data_len} bytes, have {view.nbytes}")
    buffers = []
    for i in range(count):
        offset, length = _ENTRY.unpack_from(view, HEADER_SIZE + _ENTRY.size * i)
        if offset + length > view.nbytes:
            raise ValueError(f"object truncated: buffer {i} ends at {offset + length}, have {view.nbytes}")
        buffers.append(view[offset : offset + length])
    return flags, view[data_start : data_start + data_len], buffers
