"""Size-capped rotation of the log files processes write through their stdout and stderr.

A worker's (or daemon's) output goes to its file through file descriptors 1 and 2, which
C code and child processes write to as well, so no Python handler can rotate it. The
process rotates its own descriptors instead, from a timer on its event loop:

1. open a fresh file beside the full one and ``dup2`` it onto the descriptor: from here
   on every write lands in the fresh file, and the full one is complete;
2. shift the rotated copies (``name.1`` -> ``name.2`` ..., the oldest dropped) and rename
   the full file to ``name.1``;
3. rename the fresh file to ``name``.

A reader following ``name`` (the node's log monitor, ``manta logs --follow``) notices
the new inode, finds the old file as ``name.1`` by its inode, reads it to the end and
moves on (``log_files.read_on``): since the old file stopped growing before it was
renamed, no line is lost. Python ``logging`` files use ``RotatingFileHandler`` with the
same names and caps.

A worker's output carries task markers (the executor writes one when the running task
changes). The fresh file starts without one: the executor notices the new file at its
next task and marks it again, even for the same task, and a reader of one task's lines
starts at the oldest rotated copy, so the label of lines written in between is the last
marker before them, in an older copy (api/logs.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from dataclasses import dataclass

from manta._private.common.config import Config

logger = logging.getLogger(__name__)

# How often a process looks at the size of its output files.
CHECK_INTERVAL_S = 1.0
_FRESH_SUFFIX = ".rotating"


@dataclass(frozen=True, slots=True)
class RotationPolicy:
    """Rotate at ``max_bytes``, keeping ``backup_count`` rotated copies; either 0 turns
    rotation off (as for Python's ``RotatingFileHandler``)."""

    max_bytes: int
    backup_count: int

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0 and self.backup_count > 0

    def due(self, size: int) -> bool:
        return self.enabled and size >= self.max_bytes


def renames(path: str, backup_count: int) -> list[tuple[str, str]]:
    """The renames that make room for ``path`` as ``path.1``, oldest first (each
    ``os.replace`` drops what was at its target: the oldest copy goes first)."""
    steps = [(f"{path}.{n - 1}", f"{path}.{n}") for n in range(backup_count, 1, -1)]
    return [*steps, (path, f"{path}.1")]


# Rotations this process has made: a writer that labels its file (the executor's task
# markers) compares it to notice a fresh file, without a system call per task.
_rotations = 0


def rotation_count() -> int:
    return _rotations


def rotate_fd(fd: int, path: str, policy: RotationPolicy) -> bool:
    """Rotate the file at ``path`` that ``fd`` writes to if it has reached the cap;
    whether it did. Left alone when ``path`` is no longer the file ``fd`` writes to."""
    if not policy.enabled:
        return False
    st = os.fstat(fd)
    if not policy.due(st.st_size) or not stat.S_ISREG(st.st_mode):
        return False
    try:
        if os.stat(path).st_ino != st.st_ino:
            return False  # renamed or replaced by someone else: not ours to rotate
    except FileNotFoundError:
        return False
    fresh = path + _FRESH_SUFFIX
    # Read-write: a worker's executor reads the last byte back (task markers).
    new = os.open(fresh, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o644)
    try:
        os.dup2(new, fd)
    finally:
        os.close(new)
    for source, target in renames(path, policy.backup_count):
        try:
            os.replace(source, target)
        except FileNotFoundError:
            pass  # fewer copies than the count so far
    os.replace(fresh, path)
    global _rotations
    _rotations += 1
    return True


def stdio_targets() -> list[tuple[int, str]]:
    """This process's stdout and stderr, where they are files of a session's logs
    directory (a daemon's ``gcs.out``, ``node.err``, ...): what ``watch`` rotates."""
    targets = []
    for fd in (1, 2):
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
            if stat.S_ISREG(os.fstat(fd).st_mode) and os.path.basename(os.path.dirname(path)) == "logs":
                targets.append((fd, path))
        except OSError:
            continue  # no /proc (not Linux), or not a file: nothing to rotate
    return targets


def watch(loop: asyncio.AbstractEventLoop, targets: list[tuple[int, str]], policy: RotationPolicy) -> None:
    """Check ``targets`` (descriptor, path) every ``CHECK_INTERVAL_S`` on ``loop`` (from
    any thread) and rotate those that are full."""
    if not policy.enabled or not targets:
        return
    failed: set[str] = set()

    def check() -> None:
        for fd, path in targets:
            try:
                rotate_fd(fd, path, policy)
            except OSError as e:
                if path not in failed:  # said once: a full disk would say it every second
                    failed.add(path)
                    logger.warning("cannot rotate the log file %s: %s", path, e)
        loop.call_later(CHECK_INTERVAL_S, check)

    loop.call_soon_threadsafe(check)


def file_handler(path: str, policy: RotationPolicy) -> logging.Handler:
    """A ``logging`` handler writing to ``path`` under the same caps."""
    from logging.handlers import RotatingFileHandler

    if not policy.enabled:
        return logging.FileHandler(path)
    return RotatingFileHandler(path, maxBytes=policy.max_bytes, backupCount=policy.backup_count)


def policy_of(config: Config) -> RotationPolicy:
    return RotationPolicy(config.rotation_max_bytes, config.rotation_backup_count)
