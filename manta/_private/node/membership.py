"""The node's membership of its cluster: joining the gcs, following it through restarts,
and telling it what this node has free (heartbeats).

Work goes on without the gcs (leases, tasks and actor calls do not need it): when the
connection drops, the node reconnects for up to ``gcs_reconnect_timeout_s`` and registers
again; if the gcs refuses it or stays away, the node stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from manta._private.common.aio import spawn
from manta._private.common.config import Config
from manta._private.common.ids import NodeID
from manta._private.node.cluster_view import ClusterView
from manta._private.rpc import messages as m
from manta._private.rpc.endpoints import connect_with_retry
from manta._private.rpc.transport import Connection, Dispatcher, RemoteError
from manta.exceptions import AuthenticationError, RpcError, VersionMismatchError

logger = logging.getLogger(__name__)

CHANNELS = ("jobs", "nodes", "resources", "worker_died", "placement_groups")
# Messages kept for the gcs while it is away, at most (the oldest go first).
KEPT_AT_MOST = 10_000
# Resource changes reach the gcs promptly, but at most this often.
HEARTBEAT_COALESCE_S = 0.02


class GcsMembership:
    def __init__(
        self,
        *,
        gcs_address: str,
        token: bytes,
        node_id: NodeID,
        config: Config,
        dispatcher: Dispatcher,
        cluster: ClusterView,
        info: Callable[[], m.NodeInfo],
        heartbeat: Callable[[], m.Heartbeat],
        on_lost: Callable[[Connection], None],
        stop_node: Callable[[], Awaitable[None]],
    ) -> None:
        self._address = gcs_address
        self._token = token
        self._node_id = node_id
        self._config = config
        self._dispatcher = dispatcher
        self._cluster = cluster
        self._info = info
        self._heartbeat = heartbeat
        self._on_lost = on_lost
        self._stop_node = stop_node
        self.conn: Connection | None = None
        self._joined = False  # registered once: losing the gcs means reconnecting
        self._rejoining = False
        self._heartbeat_due: asyncio.TimerHandle | None = None
        self.stopping = False
        # What must reach the gcs even if it is away when it happens (see notify).
        self._kept: deque[Any] = deque(maxlen=KEPT_AT_MOST)

    @property
    def connected(self) -> bool:
        return self.conn is not None and not self.conn.closed

    def notify(self, msg: Any, keep: bool = False) -> None:
        """Send ``msg`` to the gcs when connected; while it is away, dropped, or with
        ``keep`` sent once it is back (a worker's death: the actors it owned must end)."""
        if self.conn is not None and not self.conn.closed:
            self.conn.notify(msg)
        elif keep:
            self._kept.append(msg)

    async def join(self, within_s: float) -> None:
        """Connect to the gcs (retrying for ``within_s``), register this node and follow
        the cluster."""
        self.conn = await connect_with_retry(
            self._address,
            self._token,
            self._dispatcher,
            attempts_s=within_s,
            kind="node",
            ident=bytes(self._node_id),
            max_frame_bytes=self._config.max_frame_bytes,
            on_close=self._lost,
        )
        await self.conn.call(m.RegisterNode(self._info()))
        for channel in CHANNELS:
            await self.conn.call(m.Subscribe(channel, b""))
        for state in await self.conn.call(m.GetNodes()):
            self._cluster.update(state)
        self._joined = True

    def start_heartbeats(self) -> None:
        asyncio.get_running_loop().call_later(self._config.heartbeat_interval_s, self._heartbeat_loop)

    def close(self) -> None:
        self.stopping = True
        if self.conn is not None:
            self.conn.close()

    def _lost(self, conn: Connection) -> None:
        if self.stopping or not self._joined or self._rejoining:
            return
        self._on_lost(conn)
        spawn(self._rejoin(), "reconnecting to the gcs")

    async def _rejoin(self) -> None:
        timeout = self._config.gcs_reconnect_timeout_s
        logger.warning("lost the gcs; reconnecting for up to %g s", timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._rejoining = True
        try:
            while True:
                try:
                    await self.join(max(deadline - loop.time(), 0.0))
                    break
                except (RemoteError, AuthenticationError, VersionMismatchError) as e:  # it refused us
                    logger.error("the gcs refused this node (%s); stopping it and its workers", e)
                    await self._stop_node()
                    return
                except (RpcError, OSError) as e:  # gone again mid-registration: once more
                    if loop.time() >= deadline:
                        logger.error("the gcs did not come back (%s); stopping this node and its workers", e)
                        await self._stop_node()
                        return
                    await asyncio.sleep(0.05)
        finally:
            self._rejoining = False
        if self.conn is not None and self.conn.closed:
            self._lost(self.conn)  # it went again just now: start over
            return
        logger.info("reconnected to the gcs")
        for msg in [self._kept.popleft() for _ in range(len(self._kept))]:
            self.notify(msg, keep=True)  # (kept again, in order, should it go again meanwhile)
        self.send_heartbeat()

    # -- heartbeats -------------------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        if self.stopping:
            return
        # Armed again first: one failing beat must not stop them (the gcs would declare
        # this node dead).
        asyncio.get_running_loop().call_later(self._config.heartbeat_interval_s, self._heartbeat_loop)
        self.send_heartbeat()

    def schedule_heartbeat(self) -> None:
        """Send a heartbeat soon (resources changed), coalescing changes that come together."""
        if self._heartbeat_due is None and not self.stopping:
            self._heartbeat_due = asyncio.get_running_loop().call_later(
                HEARTBEAT_COALESCE_S, self.send_heartbeat
            )

    def send_heartbeat(self) -> None:
        if self._heartbeat_due is not None:
            self._heartbeat_due.cancel()
            self._heartbeat_due = None
        if self.connected:
            self.notify(self._heartbeat())
