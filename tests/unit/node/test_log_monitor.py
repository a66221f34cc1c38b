"""Tailing worker logs: labelling by task marker, partial lines, the final read."""

from __future__ import annotations

from pathlib import Path

from manta._private.common.ids import JobID, WorkerID
from manta._private.common.session import TASK_MARKER
from manta._private.node.log_monitor import LogChunk, LogMonitor, LogOutbox

JOB = JobID.from_int(7)
PID = 4242


class Worker:
    def __init__(self, tmp_path: Path, monitor: LogMonitor, name: str = "w") -> None:
        self.id = WorkerID.from_random()
        self.out = tmp_path / f"{name}.out"
        self.err = tmp_path / f"{name}.err"
        self.out.touch()
        self.err.touch()
        monitor.add(self.id, PID, str(self.out), str(self.err))

    def write(self, text: str | bytes, *, err: bool = False) -> None:
        data = text.encode() if isinstance(text, str) else text
        with open(self.err if err else self.out, "ab") as f:
            f.write(data)


def chunk(lines: list[str], task: str = "", is_err: bool = False) -> LogChunk:
    return LogChunk(JOB, PID, task, is_err, lines)


def test_nothing_is_read_before_the_worker_has_a_job(tmp_path: Path) -> None:
    monitor = LogMonitor()
    worker = Worker(tmp_path, monitor)
    worker.write("start-up noise\n")
    assert monitor.poll() == []
    monitor.set_job(worker.id, JOB)
    # What was written before the first lease stays in the file only.
    assert monitor.poll() == []
    worker.write("hello\nworld\n")
    assert monitor.poll() == [chunk(["hello", "world"])]
    assert monitor.poll() == []


def test_set_job_only_binds_once(tmp_path: Path) -> None:
    monitor = LogMonitor()
    worker = Worker(tmp_path, monitor)
    monitor.set_job(worker.id, JOB)
    worker.write("a\n")
    monitor.set_job(worker.id, JobID.from_int(8))  # ignored: does not skip "a" either
    assert monitor.poll() == [chunk(["a"])]
    monitor.set_job(WorkerID.from_random(), JOB)  # unknown worker: ignored


def test_partial_lines_wait_for_their_newline(tmp_path: Path) -> None:
    monitor = LogMonitor()
    worker = Worker(tmp_path, monitor)
    monitor.set_job(worker.id, JOB)
    worker.write("par")
    assert monitor.poll() == []
    worker.write("tial\nnext")
    assert monitor.poll() == [chunk(["partial"])]
    worker.write("\n")
    assert monitor.poll() == [chunk(["next"])]


def test_blank_lines_are_kept(tmp_path: Path) -> None:
    monitor = LogMonitor()
    worker = Worker(tmp_path, monitor)
    monitor.set_job(worker.id, JOB)
    worker.write("a\n\nb\n")
    assert monitor.poll() == [chunk(["a", "", "b"])]


def test_task_markers_label_lines_and_are_stripped(tmp_path: Path) -> None:
    monitor = LogMonitor()
    worker = Worker(tmp_path, monitor)
    monitor.set_job(worker.id, JOB)
    worker.write(f"before\n{TASK_MARKER}mod.f\nfrom f\n{TASK_MARKER}mod.g\nfrom g 1\nfrom g 2\n")
    assert monitor.poll() == [
        chunk(["before"]),
        chunk(["from f"], "mod.f"),
        chunk(["from g 1", "from g 2"], "mod.g"),
    ]
    # The task name carries over to later reads.
    worker.write("still g\n")
    assert monitor.poll() == [chunk(["still g"], "mod.g")]
    # A marker with nothing after it produces no chunk.
    worker.write(f"{TASK_MARKER}mod.h\n")
    assert monitor.poll() == []
    worker.write("h\n")
    assert monitor.poll() == [chunk(["h"], "mod.h")]


def test_marker_split_across_reads(tmp_path: Path) -> None:
    monitor = LogMonitor()
    worker = Worker(tmp_path, monitor)
    monitor.set_job(worker.id, JOB)
    worker.write(TASK_MARKER[:4])
    assert monitor.poll() == []
    worker.write(TASK_MARKER[4:] + "mod.f\nout\n")
    assert monitor.poll() == [chunk(["out"], "mod.f")]


def test_stdout_and_stderr_are_separate_streams(tmp_path: Path) -> None:
    monitor = LogMonitor()
    worker = Worker(tmp_path, monitor)
    monitor.set_job(worker.id, JOB)
    worker.write(f"{TASK_MARKER}f\nout\n")
    worker.write("err\n", err=True)
    assert monitor.poll() == [chunk(["out"], "f"), chunk(["err"], "", is_err=True)]


def test_several_workers(tmp_path: Path) -> None:
    monitor = LogMonitor()
    first, second = Worker(tmp_path, monitor, "a"), Worker(tmp_path, monitor, "b")
    monitor.set_job(first.id, JOB)
    monitor.set_job(second.id, JOB)
    first.write("1\n")
    second.write("2\n")
    assert sorted(c.lines[0] for c in monitor.poll()) == ["1", "2"]


def test_remove_reads_the_rest_including_a_last_partial_line(tmp_path: Path) -> None:
    monitor = LogMonitor()
    worker = Worker(tmp_path, monitor)
    monitor.set_job(worker.id, JOB)
    worker.write("done\nno newline")
    assert monitor.poll() == [chunk(["done"])]
    worker.write(" at the end")
    worker.write("dying words\n", err=True)
    assert monitor.remove(worker.id) == [
        chunk(["no newline at the end"]),
        chunk(["dying words"], is_err=True),
    ]
    worker.write("after\n")
    assert monitor.poll() == []
    assert monitor.remove(worker.id) == []


def test_remove_with_only_a_held_partial_line(tmp_path: Path) -> None:
    monitor = LogMonitor()
    worker = Worker(tmp_path, monitor)
    monitor.set_job(worker.id, JOB)
    worker.write("tail")
    assert monitor.poll() == []
    assert monitor.remove(worker.id) == [chunk(["tail"])]


def test_remove_of_a_worker_without_a_job_returns_nothing(tmp_path: Path) -> None:
    monitor = LogMonitor()
    worker = Worker(tmp_path, monitor)
    worker.write("noise\n")
    assert monitor.remove(worker.id) == []


def test_missing_files_are_not_an_error(tmp_path: Path) -> None:
    monitor = LogMonitor()
    worker_id = WorkerID.from_random()
    monitor.add(worker_id, PID, str(tmp_path / "gone.out"), str(tmp_path / "gone.err"))
    monitor.set_job(worker_id, JOB)
    assert monitor.poll() == []
    assert monitor.remove(worker_id) == []


def test_undecodable_bytes_are_replaced(tmp_path: Path) -> None:
    monitor = LogMonitor()
    worker = Worker(tmp_path, monitor)
    monitor.set_job(worker.id, JOB)
    worker.write(b"bad \xff byte\n")
    assert monitor.poll() == [chunk(["bad \ufffd byte"])]


def test_multibyte_character_split_across_reads(tmp_path: Path) -> None:
    """BUG: each read is decoded on its own, so a UTF-8 character whose bytes straddle two
    polls (a flush in the middle of it) is printed as two replacement characters."""
    monitor = LogMonitor()
    worker = Worker(tmp_path, monitor)
    monitor.set_job(worker.id, JOB)
    encoded = "héllo\n".encode()
    worker.write(encoded[:2])  # "h" and the first byte of "é"
    assert monitor.poll() == []
    worker.write(encoded[2:])
    assert monitor.poll() == [chunk(["héllo"])]


def test_output_that_never_ends_a_line_goes_out_in_pieces(tmp_path: Path) -> None:
    monitor = LogMonitor()
    worker = Worker(tmp_path, monitor)
    monitor.set_job(worker.id, JOB)
    bar = "\r[#####     ] 50%" * 10_000  # 170 KB of a progress bar, no newline
    worker.write(bar)
    out = monitor.poll()
    emitted = "".join(line for c in out for line in c.lines)
    assert emitted and bar.startswith(emitted)  # sent without waiting for a newline
    worker.write("\ndone\n")
    rest = monitor.poll()
    assert "".join(line for c in out + rest for line in c.lines) == bar + "done"


def test_lines_written_just_before_a_rotation_are_not_lost(tmp_path: Path) -> None:
    """The worker rotates its own output file (log_rotation); the monitor reads the rest
    of the old file (now .1) before going on into the new one, labels and all."""
    import os

    from manta._private.common.log_rotation import RotationPolicy, rotate_fd

    monitor = LogMonitor()
    worker = Worker(tmp_path, monitor)
    monitor.set_job(worker.id, JOB)
    fd = os.open(worker.out, os.O_RDWR | os.O_APPEND)
    try:
        os.write(fd, f"{TASK_MARKER}f\nfirst\n".encode())
        assert monitor.poll() == [chunk(["first"], "f")]
        os.write(fd, b"unread before the rotation\npart")
        assert rotate_fd(fd, str(worker.out), RotationPolicy(10, 2))
        os.write(fd, b"ial\nafter\n")
        lines = [line for c in monitor.poll() + monitor.poll() for line in c.lines]
        assert lines == ["unread before the rotation", "partial", "after"]
        os.write(fd, b"more\n")
        assert monitor.poll() == [chunk(["more"], "f")]
    finally:
        os.close(fd)


def test_the_outbox_keeps_chunks_in_order_until_taken_and_drops_the_oldest_past_its_bound() -> None:
    outbox = LogOutbox(max_chars=10)
    first, second, third = chunk(["aaaa"]), chunk(["bbbb", "cc"]), chunk(["dddd"])
    outbox.add([first, second])
    assert outbox.dropped_lines == 0
    outbox.add([third])  # 14 chars: the oldest chunk goes
    assert outbox.dropped_lines == 1
    assert outbox.take() == [second, third]
    assert outbox.take() == []
    outbox.add([chunk(["x" * 11])])  # one chunk past the bound is not kept either
    assert outbox.take() == [] and outbox.dropped_lines == 2
