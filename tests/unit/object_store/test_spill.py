"""Spill files: byte-exact round trips through the arena, and failures that leave nothing behind.

A full disk is produced for real in two ways: RLIMIT_FSIZE in a forked child (the kernel
refuses the write midway with EFBIG, like a disk filling up under us), and, where user
namespaces allow it, a 1 MiB tmpfs mounted in a private mount namespace (ENOSPC,
caught by the free-space check before anything is written). A read-only spill directory
covers "cannot write at all" when the tests do not run as root (root ignores modes).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import textwrap

import pytest

from manta._private.common.ids import JobID, ObjectID, TaskID
from manta._private.object_store.arena import Arena
from manta._private.object_store.layout import layout_size, read_object, write_object
from manta._private.object_store.spill import (
    read_spill_file,
    remove_spill_file,
    spill_path,
    write_spill_file,
)
from manta.exceptions import OutOfDiskError
from tests.tmpfs import needs_unshare, run_on_tiny_tmpfs

MiB = 1024 * 1024
OBJECT = ObjectID.for_put(TaskID.for_normal_task(JobID.from_int(1)), 1)


@pytest.fixture
def arena(tmp_path):
    arena = Arena.create(str(tmp_path / "arena"), 16 * MiB)
    yield arena
    arena.close()


def test_round_trip_is_byte_exact(arena: Arena, tmp_path) -> None:
    payload = os.urandom(5 * MiB + 123)
    arena.write(64, payload)
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    path = spill_path(str(spill_dir), OBJECT)
    assert path.endswith(OBJECT.hex() + ".spill")
    assert write_spill_file(path, arena.view(64, len(payload)), fsync=True) == len(payload)
    assert os.listdir(spill_dir) == [os.path.basename(path)]
    assert os.stat(path).st_mode & 0o777 == 0o600  # spilled data is the user's alone
    with open(path, "rb") as f:
        assert f.read() == payload
    assert read_spill_file(path, arena.writable_view(8 * MiB, 6 * MiB)) == len(payload)
    assert bytes(arena.view(8 * MiB, len(payload))) == payload
    remove_spill_file(path)
    remove_spill_file(path)  # already gone: fine
    assert os.listdir(spill_dir) == []


def test_an_object_survives_spill_and_restore(arena: Arena, tmp_path) -> None:
    buffers = [os.urandom(100_000), os.urandom(3)]
    size = layout_size(5, [len(b) for b in buffers])
    write_object(arena.writable_view(0, size), 2, b"hello", buffers)
    path = str(tmp_path / "obj.spill")
    write_spill_file(path, arena.view(0, size))
    read_spill_file(path, arena.writable_view(4 * MiB, size))
    flags, data, views = read_object(arena.view(4 * MiB, size))
    assert (flags, bytes(data), [bytes(v) for v in views]) == (2, b"hello", buffers)


def test_refuses_to_overwrite_and_to_overflow(tmp_path) -> None:
    path = str(tmp_path / "x.spill")
    write_spill_file(path, b"first")
    with pytest.raises(FileExistsError):
        write_spill_file(path, b"second")
    with open(path, "rb") as f:
        assert f.read() == b"first"
    with pytest.raises(ValueError, match="has 5 bytes"):
        read_spill_file(path, memoryview(bytearray(4)))
    assert sorted(os.listdir(tmp_path)) == ["x.spill"]


def _write_under_file_size_limit(path: str, size: int, limit: int) -> int:
    """In a forked child: let the kernel refuse writes past ``limit`` bytes."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
            write_spill_file(path, bytes(size))
        except OutOfDiskError as err:
            code = 3 if "cannot spill an object of" in str(err) else 2
        except BaseException:
            code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_disk_that_fills_midway_leaves_nothing_behind(tmp_path) -> None:
    path = str(tmp_path / "big.spill")
    assert _write_under_file_size_limit(path, 4 * MiB, MiB) == 3
    assert os.listdir(tmp_path) == []  # neither the file nor its .partial


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_an_unwritable_directory_leaves_nothing_behind(tmp_path) -> None:
    spill_dir = tmp_path / "ro"
    spill_dir.mkdir()
    spill_dir.chmod(0o500)
    try:
        with pytest.raises(PermissionError):
            write_spill_file(str(spill_dir / "x.spill"), b"data")
        assert os.listdir(spill_dir) == []
    finally:
        spill_dir.chmod(0o700)


_TINY_FS_CHILD = textwrap.dedent(
    """
    import json, os, sys
    from manta._private.object_store.spill import write_spill_file
    from manta.exceptions import OutOfDiskError
    directory = sys.argv[1]
    result = {}
    try:
        write_spill_file(os.path.join(directory, "big.spill"), bytes(2 * 1024 * 1024))
    except OutOfDiskError as err:
        result["error"] = str(err)
    result["left"] = sorted(os.listdir(directory))
    write_spill_file(os.path.join(directory, "small.spill"), bytes(300 * 1024))
    result["after"] = sorted(os.listdir(directory))
    print(json.dumps(result))
    """
)


@needs_unshare
def test_a_full_tmpfs_is_refused_before_writing(tmp_path) -> None:
    tiny = tmp_path / "tiny"
    proc = run_on_tiny_tmpfs(tiny, "1m", _TINY_FS_CHILD, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert "cannot spill an object of 2.0 MiB" in result["error"] and str(tiny) in result["error"]
    assert result["left"] == []
    assert result["after"] == ["small.spill"]
