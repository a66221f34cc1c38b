"""One object's bytes: header, pickle stream and aligned buffers, written and read zero-copy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from manta._private.object_store.layout import HEADER_SIZE, layout_size, read_object, write_object


def test_round_trip_is_zero_copy_and_aligned() -> None:
    c_array = np.arange(1000, dtype=np.float64).reshape(10, 100)
    f_array = np.asfortranarray(np.arange(30, dtype=np.int32).reshape(5, 6))
    buffers = [c_array, f_array, b"", bytearray(b"xyz")]
    size = layout_size(7, [c_array.nbytes, f_array.nbytes, 0, 3])
    dest = bytearray(size + 100)
    assert write_object(memoryview(dest), 5, b"pickled", buffers) == size
    assert size % 64 == 0
    flags, data, views = read_object(memoryview(dest))
    assert flags == 5 and bytes(data) == b"pickled"
    assert [v.nbytes for v in views] == [8000, 120, 0, 3]
    back = np.frombuffer(views[0], dtype=np.float64).reshape(10, 100)
    assert (back == c_array).all()
    assert np.shares_memory(back, np.frombuffer(dest, dtype=np.uint8))
    assert bytes(views[1]) == f_array.tobytes(order="A")
    base = np.frombuffer(dest, dtype=np.uint8).ctypes.data
    for view in views[:2]:
        assert (np.frombuffer(view, dtype=np.uint8).ctypes.data - base) % 64 == 0


def test_read_only_input_gives_read_only_views() -> None:
    dest = bytearray(layout_size(2, [10]))
    write_object(memoryview(dest), 0, b"ab", [b"0123456789"])
    _, data, (buf,) = read_object(memoryview(bytes(dest)))
    assert data.readonly and buf.readonly
    with pytest.raises(TypeError):
        buf[0] = 1


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="needs 128 bytes"):
        write_object(memoryview(bytearray(100)), 0, b"", [b"x"])
    with pytest.raises(ValueError, match="not a Manta object"):
        read_object(memoryview(b"XXXX" + bytes(60)))
    with pytest.raises(ValueError, match="too few"):
        read_object(memoryview(b"MNT1"))
    dest = bytearray(layout_size(0, [1000]))
    write_object(memoryview(dest), 0, b"", [bytes(1000)])
    with pytest.raises(ValueError, match="truncated"):
        read_object(memoryview(dest)[:500])
    strided = np.arange(100)[::2]
    with pytest.raises(ValueError, match="not contiguous"):
        write_object(memoryview(bytearray(4096)), 0, b"", [strided])


@given(st.binary(max_size=300), st.lists(st.binary(max_size=300), max_size=6), st.integers(0, 2**32 - 1))
def test_any_object_round_trips(data: bytes, buffers: list[bytes], flags: int) -> None:
    size = layout_size(len(data), [len(b) for b in buffers])
    assert size >= HEADER_SIZE and size % 64 == 0
    dest = bytearray(size)
    assert write_object(memoryview(dest), flags, data, buffers) == size
    got_flags, got_data, views = read_object(memoryview(dest))
    assert (got_flags, bytes(got_data), [bytes(v) for v in views]) == (flags, data, buffers)
