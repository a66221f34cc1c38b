"""The shared-memory arena: one file that every process on the node maps.

The node daemon creates it (``Arena.create``) and owns its allocation table; any process
opens it (``Arena.open``) and maps it twice: a writable mapping for filling objects it was
given space for, and a PROT_READ mapping from which every reader view is cut, so a view
handed to user code (a numpy array from ``get``) cannot be written through: the attempt
raises TypeError in Python, and a write from C faults rather than corrupting a sealed object.

Page faults decide the speed of a write here (measured on this machine: 0.6-0.8 GB/s into
fresh tmpfs pages, ~12 GB/s for a warm memcpy). So:

- ``create`` pre-allocates the file's pages with ``posix_fallocate``: no zero-fill faults.
- a process that writes maps pages in bulk before its first memcpy into them
  (``prefault``), once per 2 MiB chunk and process: after that, writes run at memcpy speed.
  On tmpfs, pages are mapped by reading one byte per page through the writable mapping: a
  read fault of a shared tmpfs page maps it writable and maps its neighbours too
  (fault-around), ~11 GB/s here, where MADV_POPULATE_WRITE goes page by page, 1.4-4 GB/s.
  On disk (the fallback) a read leaves pages write-protected for dirty tracking, so there
  MADV_POPULATE_WRITE it is.

The arena never decides where objects go; ``object_table.ObjectTable`` does.
"""

from __future__ import annotations

import errno
import mmap
import os
import sys

from manta._private.object_store.allocator import aligned
from manta._private.object_store.buffers import BufferLike, byte_view
from manta._private.object_store.stats import format_bytes

SHM_DIR = "/dev/shm"
ARENA_FILE = "object_store.arena"
PAGE = mmap.PAGESIZE
# Granularity at which a process remembers which parts of its writable mapping are mapped.
PREFAULT_CHUNK = 2 * 1024 * 1024
# Linux 5.14+; Python exposes the constant only from 3.12.
_MADV_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23 if sys.platform == "linux" else None)
_MEMORY_FILE_SYSTEMS = ("tmpfs", "ramfs", "hugetlbfs")


class ArenaSpaceError(OSError):
    """The file system cannot hold an arena of the requested size."""


def available_bytes(directory: str) -> int:
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


def choose_path(session_dir: str, capacity: int, shm_dir: str = SHM_DIR) -> tuple[str, str | None]:
    """Where the node's arena should live: (path, warning or None).

    In ``shm_dir`` (memory) when it has room for ``capacity`` bytes; otherwise in a file in
    the session directory on disk, with a warning to log once (Docker gives containers
    a 64 MiB /dev/shm unless told otherwise)."""
    name = f"manta_{os.path.basename(os.path.normpath(session_dir))}.arena"
    try:
        room = available_bytes(shm_dir)
    except OSError:
        room = -1
    if room >= capacity:
        return os.path.join(shm_dir, name), None
    where = f"{shm_dir} has only {format_bytes(room)} free" if room >= 0 else f"{shm_dir} is not usable"
    warning = (
        f"{where}, less than the object store's {format_bytes(capacity)}: the object store "
        f"will use a file on disk ({os.path.join(session_dir, ARENA_FILE)}) and be slower."
        + _shm_size_hint(capacity)
    )
    return os.path.join(session_dir, ARENA_FILE), warning


class Arena:
    """A mapped arena file. Use ``create`` (node daemon) or ``open`` (everyone else)."""

    def __init__(self, path: str, fd: int, capacity: int, owner: bool) -> None:
        self.path = path
        self.capacity = capacity
        self.owner = owner
        self._fd = fd
        self._rw_map = mmap.mmap(fd, capacity, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._ro_map = mmap.mmap(fd, capacity, mmap.MAP_SHARED, mmap.PROT_READ)
        self._rw = memoryview(self._rw_map)
        self._ro = memoryview(self._ro_map)
        self._mapped = bytearray((capacity + PREFAULT_CHUNK - 1) // PREFAULT_CHUNK)
        self.in_memory = filesystem_type(path) in _MEMORY_FILE_SYSTEMS
        self.closed = False

    # -- creating and opening --------------------------------------------------------------
    @classmethod
    def create(cls, path: str, capacity: int, *, fallocate: bool = True) -> Arena:
        """Create the arena file at ``path`` (replacing a stale one) and map it.

        ``capacity`` is rounded up to whole pages. With ``fallocate`` the file's pages are
        allocated now (tmpfs: ~0.4 s per GiB here), so writers never take zero-fill
        faults; without it the daemon can call ``fallocate`` on ranges later, off the
        startup path. Raises ArenaSpaceError naming the sizes if the file system is too
        small."""
        if capacity <= 0:
            raise ValueError(f"arena capacity must be positive, got {capacity}")
        capacity = aligned(capacity, PAGE)
        directory = os.path.dirname(os.path.abspath(path))
        reclaimable = 0
        try:
            st = os.stat(path)
            reclaimable = st.st_blocks * 512
        except FileNotFoundError:
            pass
        room = available_bytes(directory) + reclaimable
        if capacity > room:
            raise ArenaSpaceError(errno.ENOSPC, _too_small(directory, capacity, room), path)
        # A stale arena (a daemon that died) is unlinked, not reused: processes that
        # still map it keep their pages, and never see this session's objects.
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, capacity)
            if fallocate:
                _fallocate(fd, 0, capacity, path, directory)
            return cls(path, fd, capacity, owner=True)
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise

    @classmethod
    def open(cls, path: str) -> Arena:
        """Map an existing arena (any process on the node)."""
        fd = os.open(path, os.O_RDWR)
        try:
            capacity = os.fstat(fd).st_size
            if capacity <= 0:
                raise ValueError(f"{path} is empty: not an arena")
            return cls(path, fd, capacity, owner=False)
        except BaseException:
            os.close(fd)
            raise

    # -- writing -----------------------------------------------------------------------------
    def write(self, offset: int, *buffers: BufferLike) -> int:
        """Copy ``buffers`` back to back into ``[offset, ...)``, one memcpy each, after
        mapping the pages in bulk if this process has not yet; returns the bytes written."""
        views = [byte_view(b) for b in buffers]
        total = sum(v.nbytes for v in views)
        self._check(offset, total)
        self.prefault(offset, total)
        pos = offset
        for view in views:
            self._rw[pos : pos + view.nbytes] = view
            pos += view.nbytes
        return total

    def writable_view(self, offset: int, size: int) -> memoryview:
        """A writable view of ``[offset, offset + size)`` with its pages mapped, for
        ``layout.write_object`` or reading a spill file into. Only for space the store
        allocated to this writer, and only until it seals."""
        self._check(offset, size)
        self.prefault(offset, size)
        return self._rw[offset : offset + size]

    def prefault(self, offset: int, size: int) -> None:
        """Map ``[offset, offset + size)`` (rounded out to 2 MiB chunks) into this
        process's writable mapping now, so writes there take no page faults. Cheap when
        already done; call it ahead of time to take the cost off the write path."""
        self._check(offset, size)
        if size == 0:
            return
        first, last = offset // PREFAULT_CHUNK, (offset + size - 1) // PREFAULT_CHUNK
        if self._mapped.find(0, first, last + 1) == -1:
            return
        start = first * PREFAULT_CHUNK
        end = min((last + 1) * PREFAULT_CHUNK, self.capacity)
        populated = False
        if not self.in_memory and _MADV_POPULATE_WRITE is not None:
            try:
                self._rw_map.madvise(_MADV_POPULATE_WRITE, start, end - start)
                populated = True
            except OSError:  # a kernel older than 5.14
                pass
        if not populated:
            # One read per page, strided in C; reading never races with another writer's data.
            self._rw[start:end:PAGE].tobytes()
        self._mapped[first : last + 1] = b"\x01" * (last + 1 - first)

    def fallocate(self, offset: int, size: int) -> None:
        """Allocate the file's pages in ``[offset, offset + size)`` (owner only): for a
        daemon that created the arena without ``fallocate`` and fills it in the background."""
        if not self.owner:
            raise PermissionError("only the process that created the arena allocates its pages")
        self._check(offset, size)
        _fallocate(self._fd, offset, size, self.path, os.path.dirname(os.path.abspath(self.path)))

    # -- reading -------------------------------------------------------------------------------
    def view(self, offset: int, size: int) -> memoryview:
        """A read-only, zero-copy view of ``[offset, offset + size)``: writing through it
        raises TypeError. The caller must hold a pin on the object while the view (or
        anything made from it, like a numpy array) lives."""
        self._check(offset, size)
        return self._ro[offset : offset + size]

    # -- the end -------------------------------------------------------------------------------
    def close(self) -> None:
        """Unmap the arena. A mapping that views still point into (an array read from the
        store) is unmapped when the last of them is garbage-collected, never under them."""
        if self.closed:
            return
        self.closed = True
        self._rw.release()
        self._ro.release()
        for mapping in (self._rw_map, self._ro_map):
            try:
                mapping.close()
            except BufferError:
                pass  # views keep the mmap object, and so the mapping, alive
        os.close(self._fd)

    def unlink(self) -> None:
        """Remove the arena file (the daemon, at shutdown). Mappings stay valid until closed."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> Arena:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check(self, offset: int, size: int) -> None:
        if self.closed:
            raise ValueError(f"the arena {self.path} is closed")
        if offset < 0 or size < 0 or offset + size > self.capacity:
            raise ValueError(
                f"range [{offset}, {offset + size}) is outside the arena of {self.capacity} bytes"
            )


def filesystem_type(path: str) -> str:
    """The type of the file system holding ``path`` ("tmpfs", "ext4", ...), or "" if unknown."""
    target = os.path.realpath(path)
    best, kind = "", ""
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                fields = line.split()
                if len(fields) < 3:
                    continue
                mount_point = fields[1].replace("\\040", " ")
                inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
                if inside and len(mount_point) >= len(best):
                    best, kind = mount_point, fields[2]
    except OSError:
        pass
    return kind


def _shm_size_hint(capacity: int) -> str:
    # 30% headroom: other programs in the container use /dev/shm too.
    gib = (capacity * 13 // 10 + 2**30 - 1) // 2**30
    return (
        f" In a Docker container, run it with --shm-size={gib}g or more (Docker's default is "
        "64m), or give the node a smaller object_store_memory."
    )


def _too_small(directory: str, capacity: int, room: int) -> str:
    hint = (
        _shm_size_hint(capacity)
        if os.path.abspath(directory).startswith(SHM_DIR)
        else " Free disk space, or give the node a smaller object_store_memory."
    )
    return (
        f"cannot create an object store of {format_bytes(capacity)} ({capacity} bytes) in "
        f"{directory}: only {format_bytes(room)} ({room} bytes) is free there.{hint}"
    )


def _fallocate(fd: int, offset: int, size: int, path: str, directory: str) -> None:
    try:
        os.posix_fallocate(fd, offset, size)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ArenaSpaceError(
                errno.ENOSPC, _too_small(directory, size, available_bytes(directory)), path
            ) from None
        raise
