"""Writing to a connection's socket from threads other than its event loop's.

A worker writes a pushed task's answer from the thread that ran it, and a driver's thread
pushes a task to an idle worker itself: neither wakes the loop's thread. Such writes go to
a duplicate of the socket's descriptor, made on the loop once a connection is to carry
them. Every write to the connection, the loop's included, holds ``lock``: so no two
frames interleave, and the duplicate is closed only while nobody writes to it. A frame
goes straight out only when nothing waits to go out before it; what a full socket buffer
leaves unwritten, the connection sends first from its loop.
"""

from __future__ import annotations

import os
import threading
from typing import Any


class ThreadWrites:
    __slots__ = ("_fd", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._fd = -1

    @property
    def enabled(self) -> bool:
        return self._fd >= 0

    def enable(self, sock: Any) -> None:
        """Loop thread: let threads write to ``sock`` (the transport's socket) from now on."""
        with self.lock:
            if self._fd < 0:
                self._fd = os.dup(sock.fileno())

    def disable(self) -> None:
        """Loop thread (the connection closed): no more writes; the duplicate is closed."""
        with self.lock:
            fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def write(self, frame: bytes) -> bytes | None:
        """With ``lock`` held, and nothing waiting to go out before ``frame``: write it now.
        None if nothing was written (not enabled, or the connection breaks); else what is
        left of it (empty when all of it went)."""
        if self._fd < 0:
            return None
        try:
            sent = os.write(self._fd, frame)
        except BlockingIOError:
            sent = 0
        except OSError:
            return None  # the connection is breaking: its loop finds out and says so
        return frame[sent:]
