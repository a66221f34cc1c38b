"""A session's log files as the log API serves them: which names a caller may ask for,
the listing, the last lines of a file, and reading on from a position across rotations.

Callers name a file, never a path. A name is one path component: no separators, no
``..``, nothing hidden, no percent signs (a name arrives decoded once; a ``%2e%2e%2f``
still here was encoded twice, which nothing legitimate does), printable only. The name
is then resolved with every symbolic link followed and must still be a regular file
directly inside the logs directory, so a link planted there cannot lead out of it.
The audit log sits in the same directory but is the admin's (``manta audit``): it is
neither listed nor served here, where the read role suffices.

No sockets, threads or clocks: the node daemon serves these over RPC, and its log
monitor follows worker output with ``read_on``.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from dataclasses import dataclass

LOGS_DIR = "logs"
MAX_NAME = 255
# The last bytes a tail returns at most, whatever number of lines is asked for.
MAX_TAIL_BYTES = 64 << 20
_BLOCK = 64 << 10
# Not served by the log API (see the module docstring), nor their rotated copies.
_PRIVATE = ("audit.jsonl",)


class LogAccessError(ValueError):
    """A request the log API refuses: ``status`` is the HTTP status that says why (400 a
    bad name, 403 a file it does not serve, 404 no such file)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Position:
    """Where a reader is: the file (by inode, which survives its rename at rotation) and
    the offset in it. Inode 0: not yet in any file."""

    inode: int = 0
    offset: int = 0


@dataclass(frozen=True, slots=True)
class LogFile:
    name: str
    size: int
    mtime: float


def logs_dir(session_dir: str) -> str:
    return os.path.join(session_dir, LOGS_DIR)


def _private(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in _PRIVATE)


def check_name(name: str) -> None:
    """Refuse (``LogAccessError``, 400 or 403) anything but a plain file name."""
    if not isinstance(name, str) or not name:
        raise LogAccessError("a log file name is required", 400)
    shown = repr(name[:80])
    if len(name) > MAX_NAME:
        raise LogAccessError(f"log file names are at most {MAX_NAME} characters", 400)
    if "%" in name:
        raise LogAccessError(f"{shown}: percent-encoded names are refused; send the plain name", 400)
    if "/" in name or "\\" in name or os.sep in name:
        raise LogAccessError(f"{shown}: give a file name of the logs directory, not a path", 400)
    if name.startswith(".") or not name.isprintable():
        raise LogAccessError(f"{shown} is not a log file name", 400)
    if _private(name):
        raise LogAccessError(
            "the audit log is not served by the log API: read it with `manta audit` (admin role)", 403
        )


def resolve(directory: str, name: str) -> str:
    """The real path of log file ``name`` in ``directory``; ``LogAccessError`` when the
    name is refused, leads outside the directory, or names no regular file (404)."""
    check_name(name)
    root = os.path.realpath(directory)
    real = os.path.realpath(os.path.join(root, name))
    if os.path.dirname(real) != root:
        raise LogAccessError(f"{name!r} leads outside the logs directory", 400)
    if _private(os.path.basename(real)):
        check_name(os.path.basename(real))  # a link to the audit log: refused as it is
    try:
        st = os.stat(real)
    except OSError:
        raise LogAccessError(f"no log file named {name!r} on this node", 404) from None
    if not stat.S_ISREG(st.st_mode):
        raise LogAccessError(f"no log file named {name!r} on this node", 404)
    return real


def list_files(directory: str, glob: str = "*") -> list[LogFile]:
    """The regular files of ``directory`` (links and subdirectories left out) whose names
    match ``glob``, by name."""
    found = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    for entry in entries:
        if _private(entry.name) or not fnmatch.fnmatchcase(entry.name, glob):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # removed meanwhile (a rotation)
        found.append(LogFile(entry.name, st.st_size, st.st_mtime))
    return sorted(found, key=lambda f: f.name)


def category(name: str) -> str:
    """The group a file is listed under, with Ray's names where Ray has the same process
    (the node daemon is Ray's raylet, the gcs its gcs_server)."""
    base = _base_name(name)
    if base.startswith("worker-") and base != "worker-template.out" and base != "worker-template.err":
        return {".out": "worker_out", ".err": "worker_err", ".log": "core_worker"}.get(
            os.path.splitext(base)[1], "internal"
        )
    for prefix, group in (("node.", "raylet"), ("gcs.", "gcs_server"), ("dashboard.", "dashboard")):
        if base.startswith(prefix):
            return group
    if base.startswith("job-driver-"):
        return "job_driver"
    if base.startswith("runtime_env_setup-"):
        return "runtime_env"
    return "internal"


def _base_name(name: str) -> str:
    """``node.err`` for ``node.err.3`` (a rotated copy)."""
    stem, dot, suffix = name.rpartition(".")
    return stem if dot and suffix.isdigit() else name


def _open(path: str) -> int:
    return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))


def tail(
    path: str, lines: int, skip_prefix: bytes = b"", max_bytes: int = MAX_TAIL_BYTES
) -> tuple[bytes, Position, bool]:
    """The last ``lines`` lines of ``path`` (all of it when negative), at most ``max_bytes``;
    the position after them (where a follower goes on); and whether anything before them
    was left out. Lines starting with ``skip_prefix`` (task markers) are returned but not
    counted."""
    fd = _open(path)
    try:
        st = os.fstat(fd)
        end = st.st_size
        if lines < 0:
            start = max(0, end - max_bytes)
            return os.pread(fd, end - start, start), Position(st.st_ino, end), start > 0
        start, blocks, newlines = end, [], 0
        while start > 0 and end - start < max_bytes:
            step = min(_BLOCK, start, max_bytes - (end - start))
            start -= step
            blocks.append(os.pread(fd, step, start))
            newlines += blocks[-1].count(b"\n")
            # One newline more than lines asked for: the first line read may be cut short.
            if newlines > lines and _counted(b"".join(reversed(blocks)), skip_prefix) > lines:
                break
        kept = _last_lines(b"".join(reversed(blocks)), lines, skip_prefix, whole=start == 0)
        return kept, Position(st.st_ino, end), len(kept) < end
    finally:
        os.close(fd)


def _counted(data: bytes, skip_prefix: bytes) -> int:
    count = data.count(b"\n")
    if skip_prefix:
        count -= data.count(b"\n" + skip_prefix) + data.startswith(skip_prefix)
    return count


def _last_lines(data: bytes, lines: int, skip_prefix: bytes, whole: bool) -> bytes:
    parts = data.splitlines(keepends=True)
    if not whole and parts:
        parts = parts[1:]  # it began before the data read: not a whole line
    kept: list[bytes] = []
    counted = 0
    for part in reversed(parts):
        if counted == lines and not (skip_prefix and part.startswith(skip_prefix)):
            break
        kept.append(part)
        if not (skip_prefix and part.startswith(skip_prefix)):
            counted += 1
    return b"".join(reversed(kept))


def read_on(path: str, position: Position, max_bytes: int) -> tuple[bytes, Position]:
    """What was written after ``position``, at most ``max_bytes``, and the position after it.

    A rotation (``log_rotation``) renames the file to ``path.1`` and puts a new one at
    ``path``. A reader still in the old file finds it by its inode among the rotated
    copies, reads it to its end, then goes on into the next newer file: nothing written
    is skipped as long as the old file still exists. (Only a file the rotation deleted
    before it was read is lost; the reader then starts the newest file.) A file cut
    shorter than the position (truncated in place) is read again from its start."""
    try:
        st = os.stat(path)
    except OSError:
        return b"", position  # mid-rotation, or not created yet
    if position.inode in (0, st.st_ino):
        # Still in the current file: the common case, and often nothing new (no open).
        if st.st_size == position.offset:
            return b"", Position(st.st_ino, position.offset)
        offset = position.offset if st.st_size > position.offset else 0
        data, inode = _read_file(path, offset, max_bytes)
        if inode != st.st_ino:
            return b"", position  # rotated between the two looks: the next call follows it
        return data, Position(inode, offset + len(data))
    chain = _chain(path, position.inode)
    index = len(chain) - 1
    offset = position.offset if index > 0 else 0
    parts: list[bytes] = []
    got = 0
    while True:
        data, inode = _read_file(chain[index], offset, max_bytes - got)
        parts.append(data)
        got += len(data)
        if inode:
            position = Position(inode, offset + len(data))
        if index == 0 or got >= max_bytes:
            return b"".join(parts), position
        index, offset = index - 1, 0  # that file is finished: on into the next newer one


def _chain(path: str, inode: int) -> list[str]:
    """``path`` and its rotated copies, newest first, up to the one with ``inode``; just
    ``[path]`` when none has it (the rotation removed it)."""
    chain = [path]
    n = 1
    while True:
        older = f"{path}.{n}"
        try:
            st = os.stat(older)
        except OSError:
            return [path]
        chain.append(older)
        if st.st_ino == inode:
            return chain
        n += 1


def _read_file(path: str, offset: int, max_bytes: int) -> tuple[bytes, int]:
    """(bytes from ``offset``, inode); inode 0 when the file is not there."""
    try:
        fd = _open(path)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ELOOP):
            return b"", 0
        raise
    try:
        st = os.fstat(fd)
        if st.st_size <= offset:
            return b"", st.st_ino
        return os.pread(fd, min(max_bytes, st.st_size - offset), offset), st.st_ino
    finally:
        os.close(fd)
