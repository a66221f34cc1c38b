"""``ray._private.utils``: the helpers Ray's tests and Ray programs take from it (older
Ray versions kept ``ray._common.utils``'s helpers here too, so they are here as well)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any

import psutil

from manta.compat.ray_common.utils import (
    binary_to_hex,
    decode,
    get_or_create_event_loop,
    get_random_alphanumeric_string,
    hex_to_binary,
    try_to_create_directory,
)

__all__ = [
    "binary_to_hex",
    "decode",
    "ensure_str",
    "format_error_message",
    "get_num_cpus",
    "get_or_create_event_loop",
    "get_random_alphanumeric_string",
    "get_system_memory",
    "get_used_memory",
    "hex_to_binary",
    "is_main_thread",
    "try_to_create_directory",
]


def format_error_message(exception_message: str, task_exception: bool = False) -> str:
    """A formatted traceback, for display; for a task's, without the two lines of the
    worker's own frame that follow the "Traceback" line."""
    lines = exception_message.split("\n")
    if task_exception:
        lines = lines[:1] + lines[3:]
    return "\n".join(lines)


def get_num_cpus() -> int:
    """The CPUs this process may run on (its affinity, which containers restrict)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def get_system_memory() -> int:
    """Bytes of memory of this machine."""
    return int(psutil.virtual_memory().total)


def get_used_memory() -> int:
    """Bytes of memory in use on this machine."""
    memory = psutil.virtual_memory()
    return int(memory.total - memory.available)


def ensure_str(s: str | bytes, encoding: str = "utf-8", errors: str = "strict") -> str:
    return s if isinstance(s, str) else s.decode(encoding, errors)


def is_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


_UNSET: Any = object()


class DeferSigint(contextlib.AbstractContextManager):  # type: ignore[type-arg]
    """Hold SIGINT back for the length of a block: a Ctrl-C during it takes effect when the
    block is left, once. SIGINT handlers installed inside the block take effect then too
    (the last one installed wins). Only the main thread receives signals in Python."""

    def __init__(self) -> None:
        self.signal_received = False
        self._previous: Any = None
        self._installed: Any = _UNSET
        self._real_signal: Any = None

    @classmethod
    def create_if_main_thread(cls) -> contextlib.AbstractContextManager:  # type: ignore[type-arg]
        return cls() if threading.current_thread() is threading.main_thread() else contextlib.nullcontext()

    def _note(self, signum: int, frame: Any) -> None:
        self.signal_received = True

    def _intercept(self, signum: int, handler: Any) -> Any:
        if signum == signal.SIGINT and threading.current_thread() is threading.main_thread():
            before = self._previous if self._installed is _UNSET else self._installed
            self._installed = handler
            return before
        return self._real_signal(signum, handler)

    def __enter__(self) -> DeferSigint:
        self._previous = signal.signal(signal.SIGINT, self._note)
        self._real_signal = signal.signal
        signal.signal = self._intercept  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: Any) -> None:
        signal.signal = self._real_signal
        handler = self._previous if self._installed is _UNSET else self._installed
        self._real_signal(signal.SIGINT, handler)
        if self.signal_received:
            signal.raise_signal(signal.SIGINT)  # delivered to ``handler`` now, once


def publish_error_to_driver(
    error_type: str, message: str, gcs_client: Any = None, job_id: Any = None, num_retries: Any = None
) -> None:
    """Push an error to a job's driver (this process's job unless ``job_id`` is given)."""
    import time

    from manta._private.api.context import require_initialized
    from manta._private.common.ids import JobID
    from manta._private.rpc.messages import ErrorPush

    worker = require_initialized("publishing an error")
    job = worker.job_id if job_id is None else JobID(bytes(job_id))
    worker.call_gcs(ErrorPush(job, error_type, message, time.time()))
