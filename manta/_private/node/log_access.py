"""The node daemon's side of the log API: list and read the files of its logs directory
(``ListLogFiles``, ``ReadLogFile``). Which names may be read, and how: common/log_files.py.

Only the cluster's credential reaches these handlers (the node daemon accepts no other):
users come through ``manta logs`` on a cluster host or the head's HTTP service, which
checks their token's role first.

The file system is touched from threads, a few requests at a time: a read of megabytes
from a slow disk must not stall the daemon's event loop (heartbeats, leases, the task
path), and many readers at once must not take every thread of the loop's executor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from manta._private.common import log_files
from manta._private.common.ids import NodeID
from manta._private.common.session import TASK_MARKER
from manta._private.rpc import messages as m
from manta._private.rpc.transport import Connection, Dispatcher

logger = logging.getLogger(__name__)

# Most bytes one read returns (a follower asks again for the rest).
MAX_READ_BYTES = 4 << 20
# Requests touching the file system at once; more wait their turn.
MAX_CONCURRENT_READS = 4
_MARKER = TASK_MARKER.encode()


class LogAccess:
    def __init__(
        self, node_id: NodeID, directory: str, workers: Callable[[], Iterable[tuple[str, int]]]
    ) -> None:
        self._node_id = node_id
        self._dir = directory
        # (worker id hex, pid) of the node's workers, running and recently ended.
        self._workers = workers
        self._reads = asyncio.Semaphore(MAX_CONCURRENT_READS)

    def register(self, dispatcher: Dispatcher) -> None:
        dispatcher.register(m.ListLogFiles, self.list_files)
        dispatcher.register(m.ReadLogFile, self.read_file)

    async def list_files(self, _conn: Connection | None, msg: m.ListLogFiles) -> m.LogFileListing:
        glob = msg.glob if isinstance(msg.glob, str) and msg.glob else "*"
        workers = [[w, pid] for w, pid in self._workers()]  # on the loop: the table is its
        async with self._reads:
            found = await asyncio.to_thread(log_files.list_files, self._dir, glob)
        return m.LogFileListing(self._node_id, [[f.name, f.size, f.mtime] for f in found], workers)

    async def read_file(self, _conn: Connection | None, msg: m.ReadLogFile) -> m.LogFileChunk:
        async with self._reads:
            return await asyncio.to_thread(self._read, msg)

    def _read(self, msg: m.ReadLogFile) -> m.LogFileChunk:
        """The answer to ``msg`` (in a thread)."""
        max_bytes = max(1, min(int(msg.max_bytes), MAX_READ_BYTES))
        path = msg.filename
        try:
            path = log_files.resolve(self._dir, msg.filename)
            if msg.lines < 0 or msg.inode:
                data, position = log_files.read_on(
                    path, log_files.Position(int(msg.inode), max(0, int(msg.offset))), max_bytes
                )
                return m.LogFileChunk(data, position.inode, position.offset, False, 0, "")
            data, position, truncated = log_files.tail(path, int(msg.lines), _MARKER, max_bytes)
        except log_files.LogAccessError as e:
            return m.LogFileChunk(b"", 0, 0, False, e.status, str(e))
        except OSError as e:
            logger.info("cannot read the log file %s: %s", path, e)
            return m.LogFileChunk(b"", 0, 0, False, 404, f"cannot read {msg.filename!r}: {e.strerror or e}")
        # A tail ends where the file did when it was read; a follower goes on from there.
        return m.LogFileChunk(data, position.inode, position.offset, truncated, 0, "")
