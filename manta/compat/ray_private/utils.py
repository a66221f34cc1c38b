"""``ray._private.utils``: the helpers Ray's tests and Ray programs take from it (older
Ray versions kept ``ray._common.utils``'s helpers here too, so they are here as well)."""

from __future__ import annotations

import os
import threading

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
