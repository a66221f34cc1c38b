"""Spill files: an object's bytes copied from the arena to local disk, and back.

The node daemon's I/O shell calls these for the store's ``Spill`` actions and restores;
the store itself never touches a file. A spill file holds exactly the object's bytes in
the arena (``layout`` format), so a restore is one sequential read into fresh arena space.

Writes go to ``<path>.partial`` and are renamed into place only when complete, so a spill
file that exists is whole: a failed spill (disk full, I/O error, a crash) leaves no file
under the final name, and the store keeps the object in memory as before
(``ObjectTable.spill_failed``). A full disk is reported as OutOfDiskError naming the
directory and the sizes.
"""

from __future__ import annotations

import errno
import os

from manta._private.common.ids import ObjectID
from manta._private.object_store.arena import available_bytes
from manta._private.object_store.buffers import BufferLike, byte_view
from manta._private.object_store.stats import format_bytes
from manta.exceptions import OutOfDiskError

# Largest single read or write: Linux moves at most ~2 GiB per call anyway.
IO_CHUNK = 1 << 30
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def spill_path(spill_dir: str, object_id: ObjectID) -> str:
    return os.path.join(spill_dir, f"{object_id.hex()}.spill")


def write_spill_file(path: str, source: BufferLike, *, fsync: bool = False) -> int:
    """Write ``source`` (a view of the object in the arena) to a new file at ``path``;
    returns its size.

    Raises OutOfDiskError when the file system is (or becomes) too full, FileExistsError
    if ``path`` exists, and other OSErrors as they come; in every case nothing is left
    behind. ``fsync`` flushes the file before it is renamed into place (spill files do
    not outlive their session, so durability is rarely worth the wait)."""
    view = byte_view(source)
    size = view.nbytes
    directory = os.path.dirname(os.path.abspath(path))
    free = available_bytes(directory)
    if size > free:
        raise OutOfDiskError(_disk_full(size, directory, free))
    if os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, "a spill file already exists", path)
    partial = path + ".partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        pos = 0
        while pos < size:
            pos += os.write(fd, view[pos : pos + IO_CHUNK])
        if fsync:
            os.fsync(fd)
        os.close(fd)
        fd = -1
        os.rename(partial, path)
    except BaseException as err:
        if fd >= 0:
            os.close(fd)
        _remove(partial)
        if isinstance(err, OSError) and err.errno in _DISK_FULL:
            raise OutOfDiskError(_disk_full(size, directory, available_bytes(directory))) from err
        raise
    return size


def read_spill_file(path: str, dest: memoryview) -> int:
    """Read the spill file at ``path`` into the start of ``dest`` (a writable arena view);
    returns its size. Raises ValueError if it does not fit, OSError if it cannot be read
    whole."""
    dest = byte_view(dest)
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        if size > dest.nbytes:
            raise ValueError(f"spill file {path} has {size} bytes, the space for it {dest.nbytes}")
        pos = 0
        while pos < size:
            n = f.readinto(dest[pos : min(size, pos + IO_CHUNK)])
            if not n:
                raise OSError(errno.EIO, f"spill file ended after {pos} of {size} bytes", path)
            pos += n
    return size


def remove_spill_file(path: str) -> None:
    """Delete a spill file (a ``DeleteSpillFile`` action); a missing one is fine."""
    _remove(path)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _disk_full(size: int, directory: str, free: int) -> str:
    return (
        f"cannot spill an object of {format_bytes(size)} to {directory}: only "
        f"{format_bytes(free)} is free on that file system. Free disk space or point the "
        "node's spill directory at a larger disk."
    )
