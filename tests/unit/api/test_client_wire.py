"""How a remote driver's large buffers are cut into parts and put back together."""

from __future__ import annotations

import numpy as np
import pytest

from manta._private.api import client_wire as wire
from manta._private.rpc.messages import ClientPart


def test_large_buffers_travel_in_parts_and_come_back_whole() -> None:
    array = np.arange(3 * wire.PART_BYTES // 8 + 5, dtype=np.int64)
    payload, buffers = wire.dumps({"a": array}, lambda obj: None)
    inline, parts = wire.inline_or_parts(7, buffers)
    assert inline == [] and len(parts) == 4
    assembly = wire.Assembly(1 << 30)
    for part in parts:
        assembly.add(ClientPart(part.seq, part.index, part.offset, part.total, bytes(part.data)))
    back = wire.loads(payload, list(assembly.take(7)), lambda pid: None)
    assert np.array_equal(back["a"], array)
    assert assembly.take(7) == []


def test_small_buffers_go_inline_without_a_second_copy() -> None:
    whole = b"x" * 100
    inline, parts = wire.inline_or_parts(1, [memoryview(whole), memoryview(b"abc")[1:]])
    assert parts == [] and inline[0] is whole and inline[1] == b"bc"


def test_parts_that_overrun_or_disagree_about_their_buffer_are_refused() -> None:
    assembly = wire.Assembly(1000)
    with pytest.raises(ValueError, match="overruns"):
        assembly.add(ClientPart(1, 0, 90, 100, b"x" * 20))
    assembly.add(ClientPart(1, 0, 0, 100, b"x" * 10))
    with pytest.raises(ValueError, match="an earlier one said 100"):
        assembly.add(ClientPart(1, 0, 0, 5000, b"x" * 4000))  # would grow the buffer past the limit
    with pytest.raises(ValueError, match="more than 1000 bytes"):
        assembly.add(ClientPart(2, 0, 0, 950, b""))
