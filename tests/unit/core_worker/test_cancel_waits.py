"""Where a cancel's interrupt may land on a task's thread (executor.cancel_waits); one
that waits for an import is tested end to end in tests/integration/test_cancel.py."""

from __future__ import annotations

import sys

from manta._private.core_worker.executor import cancel_waits
from manta._private.core_worker.loop_thread import loop_turns
from manta._private.rpc.codec import encode


def test_user_code_is_interrupted_at_once() -> None:
    assert not cancel_waits(sys._getframe())


def test_the_task_paths_own_code_is_not_interrupted() -> None:
    # A frame of the core worker's code (a coroutine's, not run), and one of the rpc layer's.
    turns = loop_turns()
    try:
        assert cancel_waits(turns.cr_frame)
    finally:
        turns.close()
    frames = []

    def tracer(frame, event, arg):
        if frame.f_code is encode.__code__:
            frames.append(frame)
        return None

    sys.settrace(tracer)
    try:
        encode([1])
    finally:
        sys.settrace(None)
    assert frames and cancel_waits(frames[0])
