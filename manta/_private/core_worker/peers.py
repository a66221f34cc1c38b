"""What the core worker's helpers use to reach other processes: a narrow interface the
``CoreWorker`` provides, so that a helper depends on these few members rather than on
the whole core worker (and a test can hand it something small)."""

from __future__ import annotations

from typing import Protocol

from manta._private.common.ids import NodeID, WorkerID
from manta._private.core_worker.loop_thread import EventLoopThread
from manta._private.rpc import messages as m
from manta._private.rpc.transport import Connection


class Peers(Protocol):
    @property
    def worker_id(self) -> WorkerID: ...

    @property
    def node_id(self) -> NodeID: ...

    @property
    def address(self) -> m.Address:
        """Where this process listens (known once it has connected)."""
        ...

    @property
    def io(self) -> EventLoopThread:
        """The I/O thread every connection lives on."""
        ...

    @property
    def node_conn(self) -> Connection:
        """The connection to this node's daemon (made when the core worker connects)."""
        ...

    async def connect_worker(self, address: m.Address) -> Connection:
        """The connection to the core worker at ``address`` (shared, made on first use)."""
        ...

    async def subscribe_gcs(self, channel: str, key: bytes) -> None:
        """Follow a gcs channel (renewed on a restarted gcs)."""
        ...
