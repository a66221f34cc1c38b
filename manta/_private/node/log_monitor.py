"""Tailing worker log files and cutting them into labelled batches for drivers.

Each worker writes stdout and stderr to its own files in the session's logs directory.
The executor writes a marker line whenever the running task changes; the monitor uses
it to label the lines that follow with the task's name and strips it from the output.
A stream follows its file across rotations (``log_files.read_on``): a line written just
before the worker rotated its file is read from the rotated copy, not lost.
"""

from __future__ import annotations

import codecs
import os
from collections import deque
from dataclasses import dataclass, field

from manta._private.common.ids import JobID, WorkerID
from manta._private.common.log_files import MAX_PARTIAL_LINE, Position, read_on
from manta._private.common.session import TASK_MARKER

_MAX_READ = 1 << 20
# Output kept for the gcs while it is away (restarting); past this, the oldest is dropped.
MAX_UNSENT_CHARS = 16 << 20


@dataclass(slots=True)
class _Stream:
    path: str
    is_err: bool
    position: Position = field(default_factory=Position)
    partial: str = ""
    task_name: str = ""
    # Incremental, so a UTF-8 character split across two reads decodes whole.
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )


@dataclass(slots=True)
class _WorkerLogs:
    worker_id: WorkerID
    pid: int
    job_id: JobID | None
    streams: list[_Stream] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LogChunk:
    job_id: JobID
    pid: int
    task_name: str
    is_err: bool
    lines: list[str]


class LogMonitor:
    def __init__(self) -> None:
        self._workers: dict[WorkerID, _WorkerLogs] = {}

    def add(self, worker_id: WorkerID, pid: int, out_path: str, err_path: str) -> None:
        self._workers[worker_id] = _WorkerLogs(
            worker_id, pid, None, [_Stream(out_path, False), _Stream(err_path, True)]
        )

    def set_job(self, worker_id: WorkerID, job_id: JobID) -> None:
        logs = self._workers.get(worker_id)
        if logs is not None and logs.job_id is None:
            # Output from before the first lease (start-up noise) stays in the file only.
            for stream in logs.streams:
                stream.position = _end(stream.path)
            logs.job_id = job_id

    def remove(self, worker_id: WorkerID) -> list[LogChunk]:
        """Stop following a dead worker, returning what it wrote last."""
        logs = self._workers.pop(worker_id, None)
        return self._read(logs, final=True) if logs is not None else []

    def poll(self) -> list[LogChunk]:
        chunks: list[LogChunk] = []
        for logs in self._workers.values():
            chunks += self._read(logs, final=False)
        return chunks

    def _read(self, logs: _WorkerLogs, final: bool) -> list[LogChunk]:
        if logs.job_id is None:
            return []
        chunks: list[LogChunk] = []
        for stream in logs.streams:
            text = _read_from(stream)
            if not text and not (final and stream.partial):
                continue
            text = stream.partial + text
            lines = text.split("\n")
            stream.partial = "" if final else lines.pop()
            if len(stream.partial) > MAX_PARTIAL_LINE:
                # Output that never ends a line (progress bars redrawn with \r) goes out
                # in pieces rather than piling up here.
                lines.append(stream.partial)
                stream.partial = ""
            if final and lines and lines[-1] == "":
                lines.pop()
            current: list[str] = []
            for line in lines:
                if line.startswith(TASK_MARKER):
                    if current:
                        chunks.append(
                            LogChunk(logs.job_id, logs.pid, stream.task_name, stream.is_err, current)
                        )
                        current = []
                    stream.task_name = line[len(TASK_MARKER) :]
                else:
                    current.append(line)
            if current:
                chunks.append(LogChunk(logs.job_id, logs.pid, stream.task_name, stream.is_err, current))
        return chunks


def _end(path: str) -> Position:
    try:
        st = os.stat(path)
    except OSError:
        return Position()
    return Position(st.st_ino, st.st_size)


def _read_from(stream: _Stream) -> str:
    try:
        data, stream.position = read_on(stream.path, stream.position, _MAX_READ)
    except OSError:
        return ""
    return stream.decoder.decode(data)


class LogOutbox:
    """Chunks on their way to the gcs, kept while it is away so that a gcs restart loses
    no output; bounded, dropping the oldest (and counting the lines dropped)."""

    def __init__(self, max_chars: int = MAX_UNSENT_CHARS) -> None:
        self._max = max_chars
        self._chunks: deque[tuple[LogChunk, int]] = deque()
        self._chars = 0
        self.dropped_lines = 0

    def add(self, chunks: list[LogChunk]) -> None:
        for chunk in chunks:
            size = sum(map(len, chunk.lines))
            self._chunks.append((chunk, size))
            self._chars += size
        while self._chars > self._max:
            chunk, size = self._chunks.popleft()
            self._chars -= size
            self.dropped_lines += len(chunk.lines)

    def take(self) -> list[LogChunk]:
        chunks = [chunk for chunk, _ in self._chunks]
        self._chunks.clear()
        self._chars = 0
        return chunks
