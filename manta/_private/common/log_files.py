"""A session's log files as the log API serves them: which names a caller may ask for,
the listing, the last lines of a file, and reading on from a position across rotations.

Callers name a file, never a path. A name is one path component: no separators, no
``..``, nothing hidden, no percent signs (a name arrives decoded once; a ``%2e%2e%2f``
still here was encoded twice, which nothing legitimate does), printable only. The name
is then resolved with every symbolic link followed and must still be a regular file
directly inside the logs directory, so a link planted there cannot lead out of it.

The audit log sits in the same directory but is the admin's (``manta audit``): it is
neither listed nor served here, where the read role suffices. Its name is refused in any
case (a case-insensitive file system opens ``AUDIT.JSONL`` too), and since a hard link
to it has a name of its own, every file is also compared by identity (device and inode)
with the audit log and its rotated copies, after it is opened.

No sockets, threads or clocks: the node daemon serves these over RPC (from a thread),
and its log monitor follows worker output with ``read_on``.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from dataclasses import dataclass

from manta._private.common.session import AUDIT_FILE, JOB_DRIVER_LOG_PREFIX, WORKER_LOG_PREFIX

MAX_NAME = 255
# How far back from a file's end ``tail`` looks when its caller sets no smaller limit:
# a tail holds the asked-for lines that end within this many bytes, fewer when they do
# not fit (the node daemon passes its per-read limit instead; api/logs.py reads on
# backward from there when more lines are wanted).
MAX_TAIL_BYTES = 64 << 20
_BLOCK = 64 << 10
# Not served by the log API (see the module docstring), nor their rotated copies.
_PRIVATE = (AUDIT_FILE,)
# Rotated copies of a private file looked for when comparing identities (gcs/audit.py
# keeps 4).
_MAX_PRIVATE_COPIES = 32
# How often ``read_on`` builds its chain of rotated copies again when a rotation moved
# the files under it mid-read, before it returns what it has.
_MAX_REBUILDS = 4
_AUDIT_REFUSAL = "the audit log is not served by the log API: read it with `manta audit` (admin role)"

# The longest unfinished line a reader holds waiting for its newline; past it, the piece
# goes out as a line of its own.
MAX_PARTIAL_LINE = 64 << 10


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


def _private(name: str) -> bool:
    folded = name.casefold()
    return any(folded == p or folded.startswith(p + ".") for p in _PRIVATE)


def _private_files(directory: str) -> set[tuple[int, int]]:
    """(device, inode) of the private files of ``directory`` and their rotated copies."""
    found = set()
    for base in _PRIVATE:
        for n in range(_MAX_PRIVATE_COPIES + 1):
            try:
                st = os.stat(os.path.join(directory, f"{base}.{n}" if n else base))
            except OSError:
                if n:
                    break  # rotated copies are numbered from 1 without gaps
                continue
            found.add((st.st_dev, st.st_ino))
    return found


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
        raise LogAccessError(_AUDIT_REFUSAL, 403)


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
    if (st.st_dev, st.st_ino) in _private_files(root):
        raise LogAccessError(_AUDIT_REFUSAL, 403)  # a hard link to it, under another name
    return real


def list_files(directory: str, glob: str = "*") -> list[LogFile]:
    """The regular files of ``directory`` (links and subdirectories left out) whose names
    match ``glob``, by name."""
    found = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    private = _private_files(directory)
    for entry in entries:
        if _private(entry.name) or not fnmatch.fnmatchcase(entry.name, glob):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # removed meanwhile (a rotation)
        if (st.st_dev, st.st_ino) not in private:
            found.append(LogFile(entry.name, st.st_size, st.st_mtime))
    return sorted(found, key=lambda f: f.name)


def category(name: str) -> str:
    """The group a file is listed under, with Ray's names where Ray has the same process
    (the node daemon is Ray's raylet, the gcs its gcs_server)."""
    base = _base_name(name)
    if base.startswith(WORKER_LOG_PREFIX) and base not in ("worker-template.out", "worker-template.err"):
        return {".out": "worker_out", ".err": "worker_err", ".log": "core_worker"}.get(
            os.path.splitext(base)[1], "internal"
        )
    for prefix, group in (("node.", "raylet"), ("gcs.", "gcs_server"), ("dashboard.", "dashboard")):
        if base.startswith(prefix):
            return group
    if base.startswith(JOB_DRIVER_LOG_PREFIX):
        return "job_driver"
    if base.startswith("runtime_env_setup-"):
        return "runtime_env"
    return "internal"


def _base_name(name: str) -> str:
    """``node.err`` for ``node.err.3`` (a rotated copy)."""
    stem, dot, suffix = name.rpartition(".")
    return stem if dot and suffix.isdigit() else name


def _open(path: str) -> int:
    """A read-only descriptor of the log file ``path``; ``LogAccessError`` (403) when it
    is the audit log, whatever name it was reached by."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) in _private_files(os.path.dirname(path)):
            raise LogAccessError(_AUDIT_REFUSAL, 403)
    except BaseException:
        os.close(fd)
        raise
    return fd


class TailFinder:
    """Where the last ``lines`` lines of a file begin, found from blocks read backward
    from its end (pure: the caller reads, here or over RPC). Lines that start with
    ``skip_prefix`` (task markers) are kept but not counted, and those right above the
    first kept line are kept with it (they label it). A last line without a newline
    counts. Each byte is looked at once, however many blocks a line spans.

    ``begin`` is where the kept lines start (``end`` before any is found), ``kept`` how
    many there are, ``start`` where the blocks added so far start, and ``done`` whether
    the line above the kept ones was seen (so no more need be read)."""

    def __init__(self, end: int, lines: int, skip_prefix: bytes = b"") -> None:
        self.start = self.begin = end
        self.kept = 0
        self.done = lines <= 0
        self._lines = lines
        self._prefix = skip_prefix
        # The line whose start is not known yet ends here; its first bytes, as far as
        # they are known (enough to tell a marker).
        self._line_end = end
        self._head = b""

    def add(self, block: bytes, starts_a_line: bool = False) -> None:
        """Add the block that ends where those added so far start. ``starts_a_line``:
        the caller knows a line starts at its first byte (as at the file's start)."""
        if self.done:
            return
        base = self.start = self.start - len(block)
        width = len(self._prefix)
        line_hi = search_hi = len(block)
        while not self.done:
            newline = block.rfind(b"\n", 0, search_hi)
            if newline < 0:
                break
            head = block[newline + 1 : min(line_hi, newline + 1 + width)]
            self._found(base + newline + 1, (head + self._head)[:width] if len(head) < width else head)
            self._head = b""
            line_hi, search_hi = newline + 1, newline
        if not self.done:
            self._head = (block[: min(line_hi, width)] + self._head)[:width]
            if base == 0 or starts_a_line:
                self._found(base, self._head)
                self._head = b""

    def _found(self, line_start: int, head: bytes) -> None:
        """The line from ``line_start`` to the one found before it is whole."""
        if line_start == self._line_end:
            return  # nothing after a file's last newline: no line
        if self._prefix and head == self._prefix:
            self.begin = line_start
        elif self.kept == self._lines:
            self.done = True
            return
        else:
            self.kept += 1
            self.begin = line_start
        self._line_end = line_start


def tail(
    path: str, lines: int, skip_prefix: bytes = b"", max_bytes: int = MAX_TAIL_BYTES
) -> tuple[bytes, Position, bool]:
    """The last ``lines`` lines of ``path`` (all of it when negative) that lie within its
    last ``max_bytes`` (whole lines only, so fewer when they do not fit); the position
    after them (where a follower goes on); and whether anything before them was left
    out. Lines starting with ``skip_prefix`` (task markers) are returned but not counted."""
    fd = _open(path)
    try:
        st = os.fstat(fd)
        end = st.st_size
        if lines < 0:
            start = max(0, end - max_bytes)
            return os.pread(fd, end - start, start), Position(st.st_ino, end), start > 0
        finder = TailFinder(end, lines, skip_prefix)
        blocks = []
        while not finder.done and finder.start > 0 and end - finder.start < max_bytes:
            step = min(_BLOCK, finder.start, max_bytes - (end - finder.start))
            block = os.pread(fd, step, finder.start - step)
            if len(block) != step:
                break  # cut shorter meanwhile: the lines found so far
            blocks.append(block)
            finder.add(block)
        # Joined once: the blocks were counted as they came.
        kept = b"".join(reversed(blocks))[finder.begin - finder.start :]
        return kept, Position(st.st_ino, end), finder.begin > 0
    finally:
        os.close(fd)


def read_on(path: str, position: Position, max_bytes: int) -> tuple[bytes, Position]:
    """What was written after ``position``, at most ``max_bytes``, and the position after it.

    A rotation (``log_rotation``) renames the file to ``path.1`` and puts a new one at
    ``path``. A reader still in the old file finds it by its inode among the rotated
    copies, reads it to its end, then goes on into the next newer file: nothing written
    is skipped as long as the old file still exists. Each file is checked to be the one
    the chain named when it is opened: a rotation landing mid-read shifts the names, and
    the chain is then built again from where the reader is. (Only a file the rotation
    deleted before it was read is lost; the reader then starts the newest file.) A file
    cut shorter than the position (truncated in place) is read again from its start."""
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
    parts: list[bytes] = []
    got = 0
    for _ in range(_MAX_REBUILDS):
        chain = _chain(path, position.inode)
        index = len(chain) - 1
        offset = position.offset if index > 0 else 0
        while True:
            name, expected = chain[index]
            data, inode = _read_file(name, offset, max_bytes - got)
            if inode != expected:
                break  # rotated since the chain was built: build it again from `position`
            parts.append(data)
            got += len(data)
            if inode:
                position = Position(inode, offset + len(data))
            if index == 0 or got >= max_bytes:
                return b"".join(parts), position
            index, offset = index - 1, 0  # that file is finished: on into the next newer one
    return b"".join(parts), position


def _chain(path: str, inode: int) -> list[tuple[str, int]]:
    """``path`` and its rotated copies with their inodes, newest first, up to the one
    with ``inode``; just ``path``'s when none has it (the rotation removed it)."""
    try:
        chain = [(path, os.stat(path).st_ino)]
    except OSError:
        chain = [(path, 0)]
    n = 1
    while True:
        older = f"{path}.{n}"
        try:
            st = os.stat(older)
        except OSError:
            return chain[:1]
        chain.append((older, st.st_ino))
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
