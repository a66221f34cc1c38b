"""Messages of the log API (tags 180-189): a node daemon lists and reads the files of its
session's logs directory for ``manta logs`` and the head's HTTP service (which reach it
with the cluster's credential). Names and limits: common/log_files.py.
"""

from __future__ import annotations

from typing import Any

from manta._private.common.ids import NodeID
from manta._private.rpc.codec import message


@message(180)
class ListLogFiles:
    """The node's log files whose names match ``glob``: a ``LogFileListing``."""

    glob: str


@message(181)
class LogFileListing:
    node_id: NodeID
    files: list[list[Any]]  # [name, size, mtime], by name
    # The node's workers, running and recently ended: [worker id hex, pid] (which file is whose).
    workers: list[list[Any]]


@message(182)
class ReadLogFile:
    """Part of the file ``filename``, at most ``max_bytes``: its last ``lines`` lines when
    ``lines`` is 0 or more and ``inode`` is 0; else what follows ``offset`` in the file
    ``inode`` (0: the current one), on across rotations (a whole file read in pieces, or a
    follower's next read). A ``LogFileChunk``."""

    filename: str
    lines: int
    inode: int
    offset: int
    max_bytes: int


@message(183)
class LogFileChunk:
    data: bytes
    # Where the next read of a follower starts.
    inode: int
    offset: int
    # Lines before ``data`` were left out (a tail).
    truncated: bool
    # 0 when read; else the HTTP status of the refusal (400, 403, 404) and why.
    status: int
    error: str
