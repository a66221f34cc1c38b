"""What the core worker's helpers use to reach other processes: a narrow interface the
``CoreWorker`` provides, so that a helper depends on these few members rather than on
the whole core worker (and a test can hand it something small)."""

from __future__ import annotations

from typing import Any, Protocol

from manta._private.common.ids import JobID, NodeID, WorkerID
from manta._private.core_worker.loop_thread import EventLoopThread
from manta._private.rpc import messages as m
from manta._private.rpc.transport import Connection
from manta.exceptions import RayError


class Peers(Protocol):
    @property
    def worker_id(self) -> WorkerID: ...

    @property
    def node_id(self) -> NodeID: ...

    @property
    def job_id(self) -> JobID:
        """The job this process works for now (a worker's changes with its tasks)."""
        ...

    @property
    def closed(self) -> bool:
        """Whether this process is shutting down (failures then are expected)."""
        ...

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

    async def connect_node(self, address: str, node_id: NodeID) -> Connection:
        """A pooled connection to another node's daemon (``host:port``)."""
        ...

    async def node_address(self, node_id: NodeID) -> str | None:
        """The daemon address of a live node (None if the gcs knows no such live node)."""
        ...

    def call_gcs(self, msg: Any, timeout: float = ...) -> Any:
        """A blocking gcs request, from a thread other than the I/O thread."""
        ...

    def call_node(self, msg: Any, timeout: float = ...) -> Any:
        """A blocking request to this node's daemon, from a thread other than the I/O
        thread (store errors come back as themselves: ``ObjectStoreFullError``, ...)."""
        ...

    async def gcs_call(self, msg: Any) -> Any:
        """A gcs request (sent again to a restarted gcs)."""
        ...

    async def subscribe_gcs(self, channel: str, key: bytes) -> None:
        """Follow a gcs channel (renewed on a restarted gcs)."""
        ...

    def node_failure_error(self, error: BaseException) -> RayError:
        """What tasks fail with when this node's daemon is gone."""
        ...

    def push_error(self, kind: str, text: str) -> None:
        """Tell this job's driver of a system error (from any thread)."""
        ...

    def warn(self, text: str, once: bool = True) -> None:
        """Tell the user (once per text, unless ``once`` is false)."""
        ...
