"""Processes that die with their parent: Linux's parent-death signal.

``die_with_parent`` is safe as a ``preexec_fn`` in a threaded process: prctl is looked up
here, at import, so the forked child only makes one C call before it execs (loading a
library there could deadlock on a lock another thread held at the fork).
"""

from __future__ import annotations

import ctypes
import signal
from typing import Any

_PR_SET_PDEATHSIG = 1

_prctl: Any
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: best effort, nothing to do
    _prctl = None


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask Linux to send ``sig`` to this process when its parent (thread) exits."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
