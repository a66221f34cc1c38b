"""How a remote driver's calls and their answers are pickled, on both ends of the client
port: cloudpickle with out-of-band buffers (an array's bytes are not copied into the
pickle), refs and actor handles as persistent ids (each end decides what a ref it sends
or receives holds), and buffers too large for one frame cut into ``ClientPart``s.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from typing import Any

import cloudpickle

from manta._private.rpc.messages import ClientPart

# Buffers of a call or an answer past this many bytes in all travel as parts this large:
# frames stay small enough to interleave, and a lost connection loses one part, not 100 MB.
PART_BYTES = 8 << 20

PersistentId = Callable[[Any], Any]


class _Pickler(cloudpickle.CloudPickler):
    def __init__(
        self, file: io.BytesIO, persistent: PersistentId, buffers: list[pickle.PickleBuffer]
    ) -> None:
        super().__init__(file, protocol=5, buffer_callback=buffers.append)
        self._persistent = persistent

    def persistent_id(self, obj: Any) -> Any:
        return self._persistent(obj)


def dumps(value: Any, persistent: PersistentId) -> tuple[bytes, list[memoryview]]:
    """``value`` pickled, and its out-of-band buffers (views, not copies)."""
    out = io.BytesIO()
    buffers: list[pickle.PickleBuffer] = []
    _Pickler(out, persistent, buffers).dump(value)
    return out.getvalue(), [b.raw() for b in buffers]


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, persistent: Callable[[Any], Any], buffers: list[Any]) -> None:
        super().__init__(file, buffers=buffers)
        self._persistent = persistent

    def persistent_load(self, pid: Any) -> Any:
        return self._persistent(pid)


def loads(payload: bytes, buffers: list[Any], persistent: Callable[[Any], Any]) -> Any:
    return _Unpickler(io.BytesIO(payload), persistent, buffers).load()


def inline_or_parts(seq: int, buffers: list[memoryview]) -> tuple[list[bytes], list[ClientPart]]:
    """The buffers to send inside the message, or (when large) the parts to send before it."""
    if sum(b.nbytes for b in buffers) <= PART_BYTES:
        return [_bytes_of(b) for b in buffers], []
    parts = []
    for index, buffer in enumerate(buffers):
        flat = buffer.cast("B") if buffer.ndim != 1 or buffer.format != "B" else buffer
        total = flat.nbytes
        for offset in range(0, max(total, 1), PART_BYTES):
            # A view: the frame is encoded (copied) when sent, while the value is held.
            parts.append(ClientPart(seq, index, offset, total, flat[offset : offset + PART_BYTES]))  # type: ignore[arg-type]
    return [], parts


def _bytes_of(view: memoryview) -> bytes:
    """The bytes of ``view``: the object itself when it is a whole ``bytes`` (a copy made
    earlier, so the caller's arrays could change), else a copy."""
    whole = view.obj
    return whole if type(whole) is bytes and view.nbytes == len(whole) else bytes(view)


class Assembly:
    """Parts received, put back together into buffers until their message arrives."""

    def __init__(self, max_bytes: int) -> None:
        self._buffers: dict[int, dict[int, bytearray]] = {}
        self._bytes = 0
        self._max = max_bytes

    def add(self, part: ClientPart) -> None:
        if part.total < 0 or part.offset < 0 or part.offset + len(part.data) > part.total:
            raise ValueError(
                f"a part of {len(part.data)} bytes at {part.offset} overruns its buffer of {part.total}"
            )
        buffers = self._buffers.setdefault(part.seq, {})
        buffer = buffers.get(part.index)
        if buffer is None:
            if self._bytes + part.total > self._max:
                raise ValueError(f"parts of more than {self._max} bytes are waiting for their message")
            buffer = buffers[part.index] = bytearray(part.total)
            self._bytes += part.total
        elif len(buffer) != part.total:  # a slice past the end would grow it past the limit
            raise ValueError(
                f"a part says its buffer has {part.total} bytes; an earlier one said {len(buffer)}"
            )
        buffer[part.offset : part.offset + len(part.data)] = part.data

    def take(self, seq: int) -> list[bytearray]:
        buffers = self._buffers.pop(seq, {})
        self._bytes -= sum(len(b) for b in buffers.values())
        return [buffers[i] for i in sorted(buffers)]

    def clear(self) -> None:
        """Forget half-received parts (their sender will send them again, whole)."""
        self._buffers.clear()
        self._bytes = 0
