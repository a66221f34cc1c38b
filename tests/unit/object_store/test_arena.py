"""The shared-memory arena: real files, real mappings, a second process."""

from __future__ import annotations

import multiprocessing
import os

import numpy as np
import pytest

from manta._private.object_store.arena import (
    PAGE,
    PREFAULT_CHUNK,
    Arena,
    ArenaSpaceError,
    available_bytes,
    choose_path,
    filesystem_type,
)
from manta._private.object_store.layout import layout_size, read_object, write_object

MiB = 1024 * 1024
SHM = "/dev/shm"


@pytest.fixture
def arena(tmp_path):
    arena = Arena.create(str(tmp_path / "arena"), 8 * MiB)
    yield arena
    arena.close()


def test_create_allocates_the_whole_file(tmp_path) -> None:
    path = str(tmp_path / "arena")
    with Arena.create(path, 3 * MiB + 1) as arena:
        assert arena.capacity == 3 * MiB + PAGE  # whole pages
        st = os.stat(path)
        assert st.st_size == arena.capacity and st.st_blocks * 512 >= arena.capacity
        assert oct(st.st_mode & 0o777) == "0o600"


def test_create_replaces_a_stale_arena(tmp_path) -> None:
    path = tmp_path / "arena"
    path.write_bytes(b"stale" * 1000)
    with Arena.create(str(path), MiB) as arena:
        assert bytes(arena.view(0, 5)) == bytes(5) and arena.capacity == MiB


def test_writes_are_visible_to_a_reader_and_reader_views_are_read_only(arena: Arena) -> None:
    data = np.arange(1000, dtype=np.float64)
    assert arena.write(4096, b"head", data) == 4 + 8000
    view = arena.view(4096, 8004)
    assert view.readonly and bytes(view[:4]) == b"head"
    with pytest.raises(TypeError):
        view[0] = 0
    array = np.frombuffer(view[4:], dtype=np.float64)
    assert (array == data).all() and not array.flags.writeable
    with pytest.raises(ValueError):
        array.flags.writeable = True
    with pytest.raises(ValueError):
        array[0] = 1.0


def test_numpy_views_share_memory_with_the_mapping(arena: Arena) -> None:
    arena.write(PREFAULT_CHUNK, np.zeros(1000, dtype=np.int64))
    array = np.frombuffer(arena.view(PREFAULT_CHUNK, 8000), dtype=np.int64)
    base = np.frombuffer(arena.view(0, 1), dtype=np.uint8).ctypes.data
    assert array.ctypes.data == base + PREFAULT_CHUNK  # no copy: it is the mapping itself
    arena.write(PREFAULT_CHUNK, np.full(1000, 7, dtype=np.int64))
    assert (array == 7).all()  # a later write shows through the same array


def test_layout_written_in_place_reads_back_zero_copy(arena: Arena) -> None:
    payload = np.random.default_rng(0).random(10_000)
    size = layout_size(3, [payload.nbytes])
    write_object(arena.writable_view(128, size), 1, b"abc", [payload])
    flags, data, (buf,) = read_object(arena.view(128, size))
    assert (flags, bytes(data)) == (1, b"abc")
    assert buf.readonly and (np.frombuffer(buf) == payload).all()


def _child_writes(path: str, offset: int, expected_offset: int) -> None:
    arena = Arena.open(path)
    ok = bytes(arena.view(expected_offset, 6)) == b"parent"
    arena.write(offset, b"child!" if ok else b"wrong!")
    arena.close()


def test_another_process_sees_writes_and_is_seen() -> None:
    # In /dev/shm where there is one, as in production; the fixture's tmp_path otherwise.
    directory = SHM if os.path.isdir(SHM) and available_bytes(SHM) > 64 * MiB else None
    path = os.path.join(directory or "/tmp", f"manta-test-arena-{os.getpid()}")
    with Arena.create(path, 4 * MiB) as arena:
        assert arena.in_memory == (directory is not None)  # prefaults by reading, not madvise
        try:
            arena.write(3 * MiB, b"parent")
            child = multiprocessing.get_context("fork").Process(
                target=_child_writes, args=(path, MiB + 64, 3 * MiB)
            )
            child.start()
            child.join(30)
            assert child.exitcode == 0
            assert bytes(arena.view(MiB + 64, 6)) == b"child!"
        finally:
            arena.unlink()
    assert not os.path.exists(path)


def test_prefault_and_fallocate_later(tmp_path) -> None:
    with Arena.create(str(tmp_path / "arena"), 8 * MiB, fallocate=False) as arena:
        assert os.stat(arena.path).st_blocks == 0
        assert arena.in_memory == (filesystem_type(str(tmp_path)) == "tmpfs")
        arena.fallocate(0, 4 * MiB)
        assert os.stat(arena.path).st_blocks * 512 >= 4 * MiB
        arena.prefault(100, 10)
        assert arena._mapped[:2] == b"\x01\x00"
        arena.prefault(0, arena.capacity)
        assert arena._mapped == b"\x01" * 4
        arena.write(5 * MiB, b"after prefault")
        assert bytes(arena.view(5 * MiB, 14)) == b"after prefault"
        reader = Arena.open(arena.path)
        with pytest.raises(PermissionError):
            reader.fallocate(0, PAGE)
        reader.close()


def test_ranges_outside_the_arena_are_refused(arena: Arena) -> None:
    for offset, size in ((-1, 1), (arena.capacity - 1, 2), (0, arena.capacity + 1)):
        with pytest.raises(ValueError, match="outside the arena"):
            arena.view(offset, size)
    with pytest.raises(ValueError, match="outside the arena"):
        arena.write(arena.capacity - 2, b"abc")


def test_close_leaves_live_views_valid(tmp_path) -> None:
    arena = Arena.create(str(tmp_path / "arena"), MiB)
    arena.write(0, b"still here")
    view = arena.view(0, 10)
    arena.close()
    arena.close()  # idempotent
    assert bytes(view) == b"still here"  # the mapping lives as long as its views
    with pytest.raises(ValueError, match="closed"):
        arena.view(0, 1)


def test_a_too_large_arena_is_refused_naming_the_sizes(tmp_path) -> None:
    too_big = available_bytes(str(tmp_path)) + 2**40
    with pytest.raises(ArenaSpaceError, match="Free disk space") as info:
        Arena.create(str(tmp_path / "arena"), too_big)
    assert f"({too_big} bytes)" in str(info.value)
    assert not (tmp_path / "arena").exists()


@pytest.mark.skipif(not os.path.isdir(SHM), reason="no /dev/shm")
def test_a_too_large_shm_arena_suggests_shm_size() -> None:
    path = os.path.join(SHM, f"manta-test-too-big-{os.getpid()}")
    with pytest.raises(ArenaSpaceError, match="--shm-size=") as info:
        Arena.create(path, available_bytes(SHM) + 2**40)
    assert "object_store_memory" in str(info.value)
    assert not os.path.exists(path)


def test_choose_path_prefers_shm_and_falls_back_to_disk_with_one_warning(tmp_path) -> None:
    shm = tmp_path / "shm"
    shm.mkdir()
    session = str(tmp_path / "session_2024_1")
    path, warning = choose_path(session, MiB, shm_dir=str(shm))
    assert path == str(shm / "manta_session_2024_1.arena") and warning is None
    huge = available_bytes(str(shm)) + 2**40
    path, warning = choose_path(session, huge, shm_dir=str(shm))
    assert path == os.path.join(session, "object_store.arena")
    assert warning is not None
    assert "slower" in warning and "--shm-size=" in warning and path in warning
    _, warning = choose_path(session, MiB, shm_dir=str(tmp_path / "missing"))
    assert warning is not None and "not usable" in warning
