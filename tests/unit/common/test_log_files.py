"""Which log files the log API serves (names only, nothing outside the logs directory),
tails, and reading on from a position across rotations."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from manta._private.common import log_files
from manta._private.common.log_files import LogAccessError, Position

MARK = b"\x1e:manta-task:"


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    directory = tmp_path / "session" / "logs"
    directory.mkdir(parents=True)
    (tmp_path / "session" / "token").write_text("secret")
    (directory / "node.err").write_text("one\ntwo\n")
    return directory


@pytest.mark.parametrize(
    "name",
    [
        "../token",
        "/etc/passwd",
        "%2e%2e%2ftoken",
        "..%2ftoken",
        "%2Fetc%2Fpasswd",
        "..",
        ".",
        ".hidden",
        "a/b",
        "a\\b",
        "",
        "x" * 300,
        "node.err\x00",
        "line\nbreak",
    ],
)
def test_anything_but_a_plain_name_is_refused_with_400(logs: Path, name: str) -> None:
    with pytest.raises(LogAccessError) as caught:
        log_files.resolve(str(logs), name)
    assert caught.value.status == 400


def test_the_audit_log_and_its_rotated_copies_are_not_served(logs: Path) -> None:
    for name in ("audit.jsonl", "audit.jsonl.1"):
        (logs / name).write_text("{}\n")
        with pytest.raises(LogAccessError) as caught:
            log_files.resolve(str(logs), name)
        assert caught.value.status == 403 and "manta audit" in str(caught.value)
    assert [f.name for f in log_files.list_files(str(logs))] == ["node.err"]


def test_a_link_leading_out_of_the_directory_is_refused(logs: Path, tmp_path: Path) -> None:
    (logs / "innocent.log").symlink_to(tmp_path / "session" / "token")
    (logs / "abs.log").symlink_to("/etc/passwd")
    (logs / "up").symlink_to("..")
    for name in ("innocent.log", "abs.log"):
        with pytest.raises(LogAccessError) as caught:
            log_files.resolve(str(logs), name)
        assert caught.value.status == 400 and "outside" in str(caught.value)
    with pytest.raises(LogAccessError):
        log_files.resolve(str(logs), "up")
    # Links are not listed either.
    assert [f.name for f in log_files.list_files(str(logs))] == ["node.err"]


def test_a_link_to_the_audit_log_inside_the_directory_is_refused(logs: Path) -> None:
    (logs / "audit.jsonl").write_text("{}\n")
    (logs / "harmless.log").symlink_to(logs / "audit.jsonl")
    with pytest.raises(LogAccessError) as caught:
        log_files.resolve(str(logs), "harmless.log")
    assert caught.value.status == 403


def test_missing_files_and_directories_are_404_naming_the_file(logs: Path) -> None:
    (logs / "sub").mkdir()
    for name in ("nosuch.out", "sub"):
        with pytest.raises(LogAccessError) as caught:
            log_files.resolve(str(logs), name)
        assert caught.value.status == 404 and repr(name) in str(caught.value)


def test_a_plain_name_resolves_inside_the_directory(logs: Path) -> None:
    assert log_files.resolve(str(logs), "node.err") == os.path.realpath(logs / "node.err")


@given(st.text(min_size=1, max_size=40))
def test_whatever_resolves_is_a_file_directly_in_the_directory(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    directory = tmp_path_factory.mktemp("logs")
    (directory / "node.err").write_text("x")
    try:
        path = log_files.resolve(str(directory), name)
    except LogAccessError:
        return
    assert os.path.dirname(path) == os.path.realpath(directory)


def test_listing_filters_by_glob_and_sorts(logs: Path) -> None:
    (logs / "worker-abc.out").write_text("x")
    (logs / "worker-abc.err").write_text("")
    (logs / "sub").mkdir()
    assert [f.name for f in log_files.list_files(str(logs), "worker-*")] == [
        "worker-abc.err",
        "worker-abc.out",
    ]
    assert [f.size for f in log_files.list_files(str(logs), "node.err")] == [8]
    assert log_files.list_files(str(logs / "missing")) == []


@pytest.mark.parametrize(
    ("name", "group"),
    [
        ("worker-0123456789ab.out", "worker_out"),
        ("worker-0123456789ab.err.2", "worker_err"),
        ("worker-0123456789ab.log", "core_worker"),
        ("worker-template.err", "internal"),
        ("node.out.1", "raylet"),
        ("gcs.err", "gcs_server"),
        ("dashboard.out", "dashboard"),
        ("job-driver-raysubmit_1.log", "job_driver"),
        ("runtime_env_setup-abc.log", "runtime_env"),
        ("something.txt", "internal"),
    ],
)
def test_categories(name: str, group: str) -> None:
    assert log_files.category(name) == group


def write(path: Path, text: str | bytes) -> None:
    with open(path, "ab") as f:
        f.write(text.encode() if isinstance(text, str) else text)


def test_tail_returns_the_last_lines_and_says_what_was_left_out(tmp_path: Path) -> None:
    path = tmp_path / "f.out"
    write(path, "".join(f"line {i}\n" for i in range(10)))
    data, position, truncated = log_files.tail(str(path), 3)
    assert data == b"line 7\nline 8\nline 9\n" and truncated
    assert position == Position(os.stat(path).st_ino, os.stat(path).st_size)
    assert log_files.tail(str(path), 50)[0].count(b"\n") == 10 and not log_files.tail(str(path), 50)[2]
    assert log_files.tail(str(path), 0)[0] == b""


def test_tail_counts_a_last_line_without_newline(tmp_path: Path) -> None:
    path = tmp_path / "f.out"
    write(path, "a\nb\nc")
    assert log_files.tail(str(path), 2)[0] == b"b\nc"


def test_tail_does_not_count_task_markers_but_keeps_the_one_labelling_its_first_line(tmp_path: Path) -> None:
    path = tmp_path / "f.out"
    write(path, b"x\n" + MARK + b"f\ny\nz\n" + MARK + b"g\nw\n")
    assert log_files.tail(str(path), 3)[0] == b"z\n" + MARK + b"g\nw\n"  # markers counted
    assert log_files.tail(str(path), 3, MARK)[0] == MARK + b"f\ny\nz\n" + MARK + b"g\nw\n"
    assert log_files.tail(str(path), 2, MARK)[0] == b"z\n" + MARK + b"g\nw\n"


def test_tail_reads_across_blocks_and_stops_at_the_byte_cap(tmp_path: Path) -> None:
    path = tmp_path / "big.out"
    lines = [f"{i:06d} {'x' * 90}\n" for i in range(5000)]  # ~485 KiB, several blocks
    write(path, "".join(lines))
    assert log_files.tail(str(path), 2000)[0] == "".join(lines[-2000:]).encode()
    capped, _, truncated = log_files.tail(str(path), 2000, max_bytes=1000)
    assert len(capped) <= 1000 and truncated and capped.endswith(lines[-1].encode())
    whole, _, truncated = log_files.tail(str(path), -1, max_bytes=1000)
    assert len(whole) == 1000 and truncated


def test_read_on_follows_growth(tmp_path: Path) -> None:
    path = tmp_path / "w.out"
    write(path, "a\n")
    data, pos = log_files.read_on(str(path), Position(), 100)
    assert data == b"a\n"
    assert log_files.read_on(str(path), pos, 100) == (b"", pos)
    write(path, "b\n")
    data, pos = log_files.read_on(str(path), pos, 1)
    assert data == b"b"
    assert log_files.read_on(str(path), pos, 100)[0] == b"\n"


def rotate(path: Path, keep: int = 3) -> None:
    """What log_rotation does to the files (without a descriptor)."""
    for n in range(keep, 1, -1):
        if Path(f"{path}.{n - 1}").exists():
            os.replace(f"{path}.{n - 1}", f"{path}.{n}")
    os.replace(path, f"{path}.1")
    path.touch()


def test_read_on_finishes_the_rotated_file_before_the_new_one(tmp_path: Path) -> None:
    path = tmp_path / "w.out"
    write(path, "a\n")
    _, pos = log_files.read_on(str(path), Position(), 100)
    write(path, "b\n")  # written before the rotation, not read yet
    rotate(path)
    write(path, "c\n")
    # One read goes through both (a driver's last flush reads once).
    data, pos = log_files.read_on(str(path), pos, 100)
    assert data == b"b\nc\n" and pos == Position(path.stat().st_ino, 2)
    # With less room, the rest of the old file first, then the new one.
    write(path, "d\n")
    rotate(path)
    write(path, "e\n")
    assert log_files.read_on(str(path), pos, 2) == (b"d\n", Position(Path(f"{path}.1").stat().st_ino, 4))


def test_read_on_follows_several_rotations_between_reads(tmp_path: Path) -> None:
    path = tmp_path / "w.out"
    write(path, "0\n")
    _, pos = log_files.read_on(str(path), Position(), 100)
    for i in range(1, 4):
        write(path, f"{i}\n")
        rotate(path, keep=5)
    write(path, "4\n")
    out = b""
    for _ in range(10):
        data, pos = log_files.read_on(str(path), pos, 100)
        out += data
    assert out == b"1\n2\n3\n4\n"


def test_a_rotated_file_that_was_deleted_is_skipped_to_the_current_one(tmp_path: Path) -> None:
    path = tmp_path / "w.out"
    write(path, "a\n")
    _, pos = log_files.read_on(str(path), Position(), 100)
    write(path, "lost\n")
    # Replaced with no copy kept (the new file exists before the old goes, as in a rotation,
    # so it cannot reuse the old inode).
    write(tmp_path / "fresh", "new\n")
    os.replace(tmp_path / "fresh", path)
    assert log_files.read_on(str(path), pos, 100)[0] == b"new\n"


def test_a_file_truncated_in_place_is_read_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "w.out"
    write(path, "long line\n")
    _, pos = log_files.read_on(str(path), Position(), 100)
    with open(path, "wb") as f:
        f.write(b"x\n")
    assert log_files.read_on(str(path), pos, 100)[0] == b"x\n"


def test_read_on_a_missing_file_keeps_its_position(tmp_path: Path) -> None:
    pos = Position(123, 4)
    assert log_files.read_on(str(tmp_path / "none"), pos, 10) == (b"", pos)


def test_a_rotation_landing_mid_read_skips_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.out"
    write(path, "a\n")
    _, pos = log_files.read_on(str(path), Position(), 100)
    write(path, "b\n")
    rotate(path)
    write(path, "c\n")  # the reader is in w.out.1 ("a\nb\n"), w.out holds "c\n"
    real = log_files._read_file
    calls = []

    def read_file(name: str, offset: int, max_bytes: int) -> tuple[bytes, int]:
        answer = real(name, offset, max_bytes)
        calls.append(name)
        if len(calls) == 1:  # w.out.1 is read: a second rotation lands before w.out is
            rotate(path)
            write(path, "d\n")
        return answer

    monkeypatch.setattr(log_files, "_read_file", read_file)
    out = b""
    for _ in range(5):
        data, pos = log_files.read_on(str(path), pos, 100)
        out += data
    assert out == b"b\nc\nd\n"


def test_a_hard_link_to_the_audit_log_is_neither_listed_nor_read(logs: Path) -> None:
    (logs / "audit.jsonl").write_text("{}\n")
    (logs / "audit.jsonl.1").write_text("{}\n")
    os.link(logs / "audit.jsonl", logs / "now.log")
    os.link(logs / "audit.jsonl.1", logs / "then.log")
    for name in ("now.log", "then.log", "AUDIT.jsonl", "audit.JSONL.2"):
        with pytest.raises(LogAccessError) as caught:
            log_files.resolve(str(logs), name)
        assert caught.value.status == 403
    assert [f.name for f in log_files.list_files(str(logs))] == ["node.err"]


def test_a_file_swapped_for_the_audit_log_after_it_was_resolved_is_not_read(logs: Path) -> None:
    (logs / "audit.jsonl").write_text("secret\n")
    path = log_files.resolve(str(logs), "node.err")
    os.unlink(path)
    os.link(logs / "audit.jsonl", path)
    for read in (lambda: log_files.tail(path, 10), lambda: log_files.read_on(path, Position(), 100)):
        with pytest.raises(LogAccessError) as caught:
            read()
        assert caught.value.status == 403


def naive_tail(data: bytes, lines: int, prefix: bytes, max_bytes: int) -> bytes:
    """The rule, spelled out: whole lines within the last max_bytes; the last `lines`
    of them not counting marker lines, with the markers right above the first one (none
    for no lines)."""
    if lines == 0:
        return b""
    window = data[-max_bytes:] if max_bytes < len(data) else data
    parts = window.splitlines(keepends=True) if b"\n" in window else ([window] if window else [])
    if len(window) < len(data) and parts:
        parts = parts[1:]  # it may have begun mid-line: not known to be whole
    kept: list[bytes] = []
    counted = 0
    for part in reversed(parts):
        marker = bool(prefix) and part.startswith(prefix)
        if counted == lines and not marker:
            break
        kept.append(part)
        counted += not marker
    return b"".join(reversed(kept))


@given(
    st.lists(
        st.sampled_from([b"x\n", b"yy\n", b"\n", MARK + b"f\n", b"z" * 70 + b"\n", b"\r\n", b"end"]),
        max_size=60,
    ),
    st.integers(min_value=0, max_value=30),
    st.integers(min_value=1, max_value=400),
    st.booleans(),
)
def test_tail_keeps_the_rule_whatever_the_blocks(
    tmp_path_factory: pytest.TempPathFactory, pieces: list[bytes], lines: int, max_bytes: int, markers: bool
) -> None:
    data = b"".join(pieces)
    path = tmp_path_factory.mktemp("tail") / "f.out"
    path.write_bytes(data)
    prefix = MARK if markers else b""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(log_files, "_BLOCK", 7)  # lines across many blocks
        kept, position, truncated = log_files.tail(str(path), lines, prefix, max_bytes)
    assert kept == naive_tail(data, lines, prefix, max_bytes)
    assert position.offset == len(data) and truncated == (len(kept) < len(data))


def test_the_tail_finder_counts_lines_across_blocks_without_joining_them() -> None:
    data = b"old\n" * 10 + b"a\n" + MARK + b"f\n" + b"b" * 50 + b"\nc\nd"
    finder = log_files.TailFinder(len(data), 3, MARK)
    for start in range(len(data), 0, -4):
        finder.add(data[max(0, start - 4) : start])
        if finder.done:
            break
    assert (finder.kept, data[finder.begin :]) == (3, MARK + b"f\n" + b"b" * 50 + b"\nc\nd")
    assert finder.done and finder.start > 0  # it stopped at the line above: "a"
    told = log_files.TailFinder(10, 5)
    told.add(b"p\nq\n", starts_a_line=True)  # a node's answer: whole lines from its first byte
    assert (told.kept, told.begin, told.done) == (2, 6, False)
