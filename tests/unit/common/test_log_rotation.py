"""Rotating a process's output files under it, and a reader that loses nothing across it."""

from __future__ import annotations

import asyncio
import logging
import os
from logging.handlers import RotatingFileHandler
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from manta._private.common import log_files, log_rotation
from manta._private.common.config import Config
from manta._private.common.log_rotation import RotationPolicy
from manta._private.common.session import TASK_MARKER


def test_renames_make_room_oldest_first() -> None:
    assert log_rotation.renames("w.out", 3) == [
        ("w.out.2", "w.out.3"),
        ("w.out.1", "w.out.2"),
        ("w.out", "w.out.1"),
    ]
    assert log_rotation.renames("w.out", 1) == [("w.out", "w.out.1")]


@pytest.mark.parametrize(("max_bytes", "backups", "enabled"), [(10, 2, True), (0, 2, False), (10, 0, False)])
def test_either_cap_at_zero_turns_rotation_off(max_bytes: int, backups: int, enabled: bool) -> None:
    policy = RotationPolicy(max_bytes, backups)
    assert policy.enabled is enabled and policy.due(10) is enabled and not policy.due(9)


def test_the_policy_comes_from_rays_settings() -> None:
    config = Config.from_env({"RAY_ROTATION_MAX_BYTES": "1000", "RAY_ROTATION_BACKUP_COUNT": "2"})
    assert log_rotation.policy_of(config) == RotationPolicy(1000, 2)
    assert log_rotation.policy_of(Config()) == RotationPolicy(512 * 1024**2, 5)


class Writer:
    """A process's output: a descriptor opened as the worker template opens it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def writer(tmp_path: Path):
    w = Writer(tmp_path / "worker-x.out")
    yield w
    w.close()


def test_a_full_file_is_rotated_and_writes_go_on_into_a_fresh_one(writer: Writer) -> None:
    policy = RotationPolicy(10, 2)
    writer.write("123456789\n")
    assert log_rotation.rotate_fd(writer.fd, str(writer.path), policy)
    writer.write("after\n")
    assert Path(f"{writer.path}.1").read_text() == "123456789\n"
    assert writer.path.read_text() == "after\n"
    assert not Path(f"{writer.path}.rotating").exists()
    assert not log_rotation.rotate_fd(writer.fd, str(writer.path), policy)  # not full yet


def test_only_backup_count_copies_are_kept(writer: Writer) -> None:
    policy = RotationPolicy(2, 2)
    for i in range(5):
        writer.write(f"{i}\n")
        assert log_rotation.rotate_fd(writer.fd, str(writer.path), policy)
    assert Path(f"{writer.path}.1").read_text() == "4\n"
    assert Path(f"{writer.path}.2").read_text() == "3\n"
    assert not Path(f"{writer.path}.3").exists()


def test_a_file_someone_else_replaced_is_left_alone(writer: Writer, tmp_path: Path) -> None:
    writer.write("x" * 20)
    os.replace(writer.path, tmp_path / "moved")
    writer.path.write_text("someone else's\n")
    assert not log_rotation.rotate_fd(writer.fd, str(writer.path), RotationPolicy(10, 2))
    assert writer.path.read_text() == "someone else's\n"


def test_rotation_off_never_touches_the_file(writer: Writer) -> None:
    writer.write("x" * 100)
    assert not log_rotation.rotate_fd(writer.fd, str(writer.path), RotationPolicy(10, 0))
    assert not Path(f"{writer.path}.1").exists()


@given(st.lists(st.tuples(st.integers(1, 40), st.booleans(), st.booleans()), min_size=1, max_size=60))
def test_a_follower_reads_every_byte_written_across_rotations(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[int, bool, bool]]
) -> None:
    """Writes, rotations (at a small cap) and reads in any order: the follower's bytes
    are exactly what was written, as long as it falls fewer rotations behind than there
    are copies kept."""
    path = tmp_path_factory.mktemp("logs") / "worker-y.out"
    w = Writer(path)
    policy = RotationPolicy(30, 50)
    # The follower starts with the file (a worker's monitor starts at its first lease).
    _, position = log_files.read_on(str(path), log_files.Position(), 17)
    written, read = b"", b""
    try:
        for n, rotate, read_now in steps:
            text = "".join(chr(97 + (len(written) + i) % 26) for i in range(n - 1)) + "\n"
            w.write(text)
            written += text.encode()
            if rotate:
                log_rotation.rotate_fd(w.fd, str(path), policy)
            if read_now:
                data, position = log_files.read_on(str(path), position, 17)
                read += data
        while True:
            data, position = log_files.read_on(str(path), position, 17)
            if not data:
                break
            read += data
    finally:
        w.close()
    assert read == written


class Stream:
    """What the executor flushes before it marks (a worker's sys.stdout)."""

    flushes = 0

    def flush(self) -> None:
        self.flushes += 1


def test_a_worker_marks_the_fresh_file_again_after_a_rotation(writer: Writer) -> None:
    from manta._private.core_worker.executor import mark_outputs

    marked: dict[int, tuple[str, int]] = {}
    outputs = [(Stream(), writer.fd)]
    mark_outputs(marked, "f", outputs, log_rotation.rotation_count())
    writer.write("one\n")
    mark_outputs(marked, "f", outputs, log_rotation.rotation_count())  # the same file: no second marker
    assert writer.path.read_text() == f"{TASK_MARKER}f\none\n"
    assert log_rotation.rotate_fd(writer.fd, str(writer.path), RotationPolicy(5, 2))
    mark_outputs(marked, "f", outputs, log_rotation.rotation_count())  # the same name, a fresh file
    writer.write("two\n")
    # The fresh file says whose its lines are without its older copy.
    assert writer.path.read_text() == f"{TASK_MARKER}f\ntwo\n"


def test_watch_rotates_on_the_loop(writer: Writer) -> None:
    loop = asyncio.new_event_loop()
    try:
        writer.write("x" * 50)
        log_rotation.watch(loop, [(writer.fd, str(writer.path))], RotationPolicy(10, 1))
        loop.run_until_complete(asyncio.sleep(0))  # the first check runs at once
        assert Path(f"{writer.path}.1").exists() and writer.path.stat().st_size == 0
    finally:
        loop.close()


def test_python_log_files_get_rays_rotating_handler(tmp_path: Path) -> None:
    handler = log_rotation.file_handler(str(tmp_path / "w.log"), RotationPolicy(100, 2))
    try:
        assert (
            isinstance(handler, RotatingFileHandler) and handler.maxBytes == 100 and handler.backupCount == 2
        )
    finally:
        handler.close()
    plain = log_rotation.file_handler(str(tmp_path / "p.log"), RotationPolicy(0, 2))
    try:
        assert type(plain) is logging.FileHandler
    finally:
        plain.close()


def test_stdio_targets_are_only_files_of_a_logs_directory(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = "from manta._private.common import log_rotation; print(log_rotation.stdio_targets(), flush=True)"
    (tmp_path / "logs").mkdir()
    found = {}
    for where in ("elsewhere.out", "logs/x.out"):
        with open(tmp_path / where, "w") as out:
            subprocess.run([sys.executable, "-c", code], stdout=out, check=True, timeout=60)
        found[where] = (tmp_path / where).read_text()
    assert found["elsewhere.out"].strip() == "[]"  # not a file of a logs directory
    assert f"(1, '{tmp_path / 'logs' / 'x.out'}')" in found["logs/x.out"]


def test_a_daemon_rotates_its_own_stdout_when_it_is_a_file_of_a_logs_directory(tmp_path: Path) -> None:
    """What daemon.start sets up: the process finds its stdout's file and rotates it."""
    import subprocess
    import sys

    logs = tmp_path / "logs"
    logs.mkdir()
    code = (
        "import asyncio\n"
        "from manta._private.common import log_rotation as r\n"
        "print('x' * 99, flush=True)\n"
        "loop = asyncio.new_event_loop()\n"
        "r.watch(loop, r.stdio_targets(), r.RotationPolicy(50, 1))\n"
        "loop.run_until_complete(asyncio.sleep(0))\n"
        "print('after', flush=True)\n"
        "loop.close()\n"
    )
    with open(logs / "gcs.out", "ab") as out:
        subprocess.run([sys.executable, "-c", code], stdout=out, check=True, timeout=60)
    assert (logs / "gcs.out.1").read_text() == "x" * 99 + "\n"
    assert (logs / "gcs.out").read_text() == "after\n"
