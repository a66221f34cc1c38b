"""Turning values into bytes and back: cloudpickle with protocol-5 out-of-band buffers.

A serialized value is an in-band pickle stream plus a list of raw buffers (numpy arrays,
Arrow buffers, bytes-like data). Small values travel as one inline blob; large ones are
laid out in the node's arena (``object_store.layout``), whose buffers a reader maps and
hands to pickle without a copy, so a numpy array read from the store is a read-only view
of shared memory.

ObjectRefs found inside a value are reported by the ref's own ``__reduce__`` (see
``note_contained_ref``), so the caller learns which refs went into the value; refs made
while loading a value are reported the same way (``note_loaded_ref``), so the loader can
register as their borrower.
"""

from __future__ import annotations

import io
import marshal
import pickle
import threading
import types
from collections import ChainMap
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import cloudpickle
import msgpack

from manta._private import custom_serializers

# Metadata flags of a serialized value.
FLAG_ERROR = 1  # the value is an exception to raise at get


@dataclass(slots=True)
class SerializedObject:
    data: bytes | memoryview
    buffers: list[memoryview] = field(default_factory=list)
    flags: int = 0
    contained_refs: list[Any] = field(default_factory=list)

    @property
    def total_size(self) -> int:
        return len(self.data) + sum(b.nbytes for b in self.buffers)

    def is_error(self) -> bool:
        return bool(self.flags & FLAG_ERROR)


def _load_code(marshalled: bytes) -> types.CodeType:
    return marshal.loads(marshalled)  # type: ignore[no-any-return]


def _reduce_code(code: types.CodeType) -> tuple[Any, tuple[bytes]]:
    # cloudpickle 3.1 replaces a code object's file name with "<dynamic-code>", so remote
    # tracebacks lose the file and the source line. Code objects marshal whole (that is
    # what .pyc files are), file names included; every process of a cluster runs the same
    # Python, which marshal's format needs.
    return _load_code, (marshal.dumps(code),)


class Pickler(cloudpickle.Pickler):
    """cloudpickle, keeping the file names of pickled functions' code, and using the
    serializers users registered (``manta.util.register_serializer``) first."""

    dispatch_table = ChainMap(
        custom_serializers.REDUCERS, {types.CodeType: _reduce_code}, cloudpickle.Pickler.dispatch_table
    )


def dumps(value: Any) -> bytes:
    stream = io.BytesIO()
    Pickler(stream, protocol=5).dump(value)
    return stream.getvalue()


class _Collector(threading.local):
    refs: list[Any] | None = None
    loaded: list[Any] | None = None


_collector = _Collector()


def note_contained_ref(ref: Any) -> bool:
    """Called by ``ObjectRef.__reduce__``: remember that ``ref`` is inside the value.
    False when no Manta serialization is under way (plain pickle of a ref)."""
    refs = _collector.refs
    if refs is None:
        return False
    refs.append(ref)
    return True


def dumps_collecting(value: Any) -> tuple[bytes, list[Any]]:
    """``cloudpickle.dumps(value)``, and the refs inside it."""
    outer = _collector.refs
    refs: list[Any] = []
    _collector.refs = refs
    try:
        return dumps(value), refs
    finally:
        _collector.refs = outer


def note_loaded_ref(ref: Any) -> None:
    """Called when a ref is rebuilt from a pickle: remember it for ``loading``."""
    loaded = _collector.loaded
    if loaded is not None:
        loaded.append(ref)


def start_loading() -> list[Any] | None:
    """Collect the refs rebuilt on this thread from now until ``end_loading``."""
    outer = _collector.loaded
    _collector.loaded = []
    return outer


def end_loading(outer: list[Any] | None) -> list[Any]:
    """The refs rebuilt since the matching ``start_loading``."""
    loaded = _collector.loaded or []
    _collector.loaded = outer
    if outer is not None:
        outer.extend(loaded)
    return loaded


class _AsBytes:
    """A bytearray or memoryview stored as its bytes, out of band: like every stored value
    it comes back immutable (``bytes``), as in Ray."""

    __slots__ = ("view",)

    def __init__(self, view: bytearray | memoryview) -> None:
        self.view = view

    def __reduce__(self) -> Any:
        return (bytes, (pickle.PickleBuffer(self.view),))


# Values the C pickler writes exactly as ours would (no refs, no out-of-band buffers): the
# common small results skip building a Pickler, a tenth of a no-op task's cost in a worker.
_PLAIN = frozenset({type(None), bool, int, float, str, bytes})


def all_plain(values: Iterable[Any]) -> bool:
    """Whether every one of ``values`` is of a type the C pickler may write alone."""
    return all(type(v) in _PLAIN for v in values)


def serialize_plain(value: Any, flags: int = 0) -> SerializedObject:
    """Pickle a plain value, or a tuple or dict of them (``all_plain``), with the C pickler."""
    return SerializedObject(pickle.dumps(value, protocol=5), [], flags, [])


def serialize(value: Any, flags: int = 0) -> SerializedObject:
    """Pickle ``value``; raises whatever pickling raises (callers add context)."""
    if type(value) in _PLAIN:
        return serialize_plain(value, flags)
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
        Pickler(stream, protocol=5, buffer_callback=lambda b: buffers.append(b.raw())).dump(value)
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


def unpack_inline(blob: bytes) -> SerializedObject:
    """An inline blob's parts, not loaded."""
    flags, data, buffers = msgpack.unpackb(blob, use_list=True)
    return SerializedObject(data, [memoryview(b) for b in buffers], flags)
