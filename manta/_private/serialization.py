"""Turning values into bytes and back: cloudpickle with protocol-5 out-of-band buffers.

A serialized value is an in-band pickle stream plus a list of raw buffers (numpy arrays,
Arrow buffers, bytes-like data). Small values travel as one inline blob; large ones are
laid out in a store file whose buffers a reader maps and hands to pickle without a copy,
so a numpy array read from the store is a read-only view of shared memory.

ObjectRefs found inside a value are reported to the active ``RefCollector`` by the ref's
own ``__reduce__``, so the caller learns which refs escaped into the value.
"""

from __future__ import annotations

import io
import mmap
import os
import pickle
import threading
from dataclasses import dataclass, field
from typing import Any

import cloudpickle
import msgpack

# Metadata flags of a serialized value.
FLAG_ERROR = 1  # the value is an exception to raise at get

_FILE_MAGIC = b"MNT1"
_HEADER = 4 + 4 + 8 + 8  # magic, flags, data length, buffer count
_ALIGN = 64


@dataclass(slots=True)
class SerializedObject:
    data: bytes
    buffers: list[memoryview] = field(default_factory=list)
    flags: int = 0
    contained_refs: list[Any] = field(default_factory=list)

    @property
    def total_size(self) -> int:
        return len(self.data) + sum(b.nbytes for b in self.buffers)

    def is_error(self) -> bool:
        return bool(self.flags & FLAG_ERROR)


class _Collector(threading.local):
    refs: list[Any] | None = None


_collector = _Collector()


def note_contained_ref(ref: Any) -> None:
    """Called by ``ObjectRef.__reduce__``: remember that ``ref`` is inside the value."""
    refs = _collector.refs
    if refs is not None:
        refs.append(ref)


class _AsBytes:
    """A bytearray or memoryview stored as its bytes, out of band: like every stored value
    it comes back immutable (``bytes``), as in Ray."""

    __slots__ = ("view",)

    def __init__(self, view: bytearray | memoryview) -> None:
        self.view = view

    def __reduce__(self) -> Any:
        return (bytes, (pickle.PickleBuffer(self.view),))


def serialize(value: Any, flags: int = 0) -> SerializedObject:
    """Pickle ``value``; raises whatever pickling raises (callers add context)."""
    if type(value) is bytearray:
        value = _AsBytes(value)
    elif type(value) is memoryview:
        value = _AsBytes(value if value.contiguous else memoryview(value.tobytes()))
    buffers: list[memoryview] = []
    outer = _collector.refs
    refs: list[Any] = []
    _collector.refs = refs
    try:
        stream = io.BytesIO()
        cloudpickle.CloudPickler(stream, protocol=5, buffer_callback=lambda b: buffers.append(b.raw())).dump(
            value
        )
    finally:
        _collector.refs = outer
    if outer is not None:
        outer.extend(refs)
    return SerializedObject(stream.getvalue(), buffers, flags, refs)


def deserialize(data: bytes | memoryview, buffers: list[Any]) -> Any:
    return pickle.loads(data, buffers=buffers)


# -- inline form (in messages and the owner's memory) -----------------------------------


class _Packers(threading.local):
    # A msgpack Packer allocates a large buffer when made: keep one per thread.
    packer: msgpack.Packer | None = None


_packers = _Packers()


def to_inline(obj: SerializedObject) -> bytes:
    packer = _packers.packer
    if packer is None:
        packer = _packers.packer = msgpack.Packer(use_bin_type=True, autoreset=True)
    return packer.pack([obj.flags, obj.data, [bytes(b) for b in obj.buffers]])


def inline_flags(blob: bytes) -> int:
    """The flags of an inline blob, without unpacking its payload."""
    # msgpack fixarray header (1 byte), then flags as a positive fixint.
    return blob[1] if len(blob) > 1 and blob[1] < 0x80 else msgpack.unpackb(blob)[0]


def from_inline(blob: bytes) -> Any:
    _flags, data, buffers = msgpack.unpackb(blob, use_list=True)
    return deserialize(data, buffers)


# -- store file form ---------------------------------------------------------------------


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def store_layout_size(obj: SerializedObject) -> int:
    size = _aligned(_HEADER + 16 * len(obj.buffers) + len(obj.data))
    for buf in obj.buffers:
        size = _aligned(size + buf.nbytes)
    return size


def write_store_file(path: str, obj: SerializedObject) -> int:
    """Write ``obj`` to a new file at ``path``; returns its size. The file is complete
    when this returns; readers learn of it only afterwards."""
    table = []
    offset = _aligned(_HEADER + 16 * len(obj.buffers) + len(obj.data))
    for buf in obj.buffers:
        table.append((offset, buf.nbytes))
        offset = _aligned(offset + buf.nbytes)
    size = max(offset, 1)
    _check_space(os.path.dirname(path), size)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        os.ftruncate(fd, size)
        with mmap.mmap(fd, size) as mm:
            header = bytearray(_FILE_MAGIC)
            header += obj.flags.to_bytes(4, "little")
            header += len(obj.data).to_bytes(8, "little")
            header += len(obj.buffers).to_bytes(8, "little")
            for off, length in table:
                header += off.to_bytes(8, "little") + length.to_bytes(8, "little")
            mm[: len(header)] = header
            mm[len(header) : len(header) + len(obj.data)] = obj.data
            for (off, length), buf in zip(table, obj.buffers, strict=True):
                mm[off : off + length] = buf
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)
    return size


def _check_space(directory: str, size: int) -> None:
    # Writing past the end of a full tmpfs through a mapping is a SIGBUS, not an error:
    # refuse up front instead.
    stat = os.statvfs(directory)
    free = stat.f_bavail * stat.f_frsize
    if size > free:
        from manta.exceptions import ObjectStoreFullError

        raise ObjectStoreFullError(
            f"cannot store an object of {size:,} bytes: {directory} has only {free:,} bytes free. "
            "Free objects you no longer need, or give the store more room (e.g. a larger "
            "/dev/shm: docker run --shm-size=...)."
        )


def read_store_file(path: str) -> tuple[int, memoryview, list[memoryview]]:
    """Map a store file read-only: (flags, pickle stream, buffers), all views of the map."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        mm = mmap.mmap(fd, size, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    view = memoryview(mm)
    if bytes(view[:4]) != _FILE_MAGIC:
        raise ValueError(f"{path} is not a Manta object file")
    flags = int.from_bytes(view[4:8], "little")
    data_len = int.from_bytes(view[8:16], "little")
    count = int.from_bytes(view[16:24], "little")
    buffers = []
    pos = _HEADER
    for _ in range(count):
        off = int.from_bytes(view[pos : pos + 8], "little")
        length = int.from_bytes(view[pos + 8 : pos + 16], "little")
        buffers.append(view[off : off + length])
        pos += 16
    return flags, view[pos : pos + data_len], buffers
