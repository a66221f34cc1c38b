"""Where a cancel's interrupt may land on a task's thread (executor.cancel_waits); one
that waits for an import is tested end to end in tests/integration/test_cancel.py."""

from __future__ import annotations

import sys
import threading
from types import CodeType, FrameType
from typing import Any

from manta._private import serialization
from manta._private.core_worker.executor import cancel_waits
from manta._private.core_worker.loop_thread import loop_turns
from manta._private.rpc.codec import encode


def _frames_of(call: Any, *args: Any) -> dict[CodeType, FrameType]:
    """The frames a call runs, by their code (the first of each)."""
    frames: dict[CodeType, FrameType] = {}

    def tracer(frame: FrameType, event: str, arg: Any) -> None:
        frames.setdefault(frame.f_code, frame)

    sys.settrace(tracer)
    try:
        call(*args)
    finally:
        sys.settrace(None)
    return frames


def test_user_code_is_interrupted_at_once() -> None:
    assert not cancel_waits(sys._getframe())


def test_mantas_own_code_is_not_interrupted() -> None:
    turns = loop_turns()  # a coroutine of the core worker's, not run
    try:
        assert cancel_waits(turns.cr_frame)
    finally:
        turns.close()
    assert cancel_waits(_frames_of(encode, [1])[encode.__code__])
    serialize = serialization.serialize
    assert cancel_waits(_frames_of(serialize, 1)[serialize.__code__])


def test_a_thread_waiting_in_threading_is_interrupted_at_once() -> None:
    wait = threading.Event.wait
    assert not cancel_waits(_frames_of(threading.Event().wait, 0.001)[wait.__code__])
