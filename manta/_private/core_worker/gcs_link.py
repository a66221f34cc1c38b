"""A core worker's connection to the gcs: made on first use and shared by the callers
that overlap, made again when the gcs restarts (its tables are in durable storage), with
every subscription renewed and a driver's job reattached. A driver registering its job
while the gcs restarts waits for the new gcs rather than failing its ``init()``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from manta._private.common.aio import spawn
from manta._private.common.config import Config
from manta._private.common.ids import JobID, WorkerID
from manta._private.common.session import SessionInfo
from manta._private.rpc import messages as m
from manta._private.rpc.endpoints import connect_with_retry
from manta._private.rpc.transport import Connection, ConnectionLost, Dispatcher

logger = logging.getLogger(__name__)

# How long to wait before trying a call again on a gcs that went away mid-call.
_RETRY_DELAY_S = 0.05


class GcsLink:
    def __init__(
        self,
        session: SessionInfo,
        dispatcher: Dispatcher,
        config: Config,
        worker_id: WorkerID,
        is_driver: bool,
        closed: Callable[[], bool],
    ) -> None:
        self._address, self._token = session.gcs_address, session.token
        self._dispatcher, self._config = dispatcher, config
        self._kind, self._worker_id = "driver" if is_driver else "worker", worker_id
        self._closed = closed
        self.regained: Callable[[], None] = lambda: None  # called once a lost gcs is back
        self.conn: Connection | None = None
        self._connecting: asyncio.Future[Connection] | None = None
        # (channel, key) subscriptions to renew on a restarted gcs.
        self.topics: set[tuple[str, bytes]] = set()
        self._regaining = False
        # A driver's job once registered: reattached to a restarted gcs. Until then a lost
        # gcs is the registration's to wait for.
        self.job_id: JobID | None = None

    async def connection(self) -> Connection:
        if self.conn is not None and not self.conn.closed:
            return self.conn
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.ensure_future(
                connect_with_retry(
                    self._address,
                    self._token,
                    self._dispatcher,
                    attempts_s=self._config.gcs_reconnect_timeout_s,
                    kind=self._kind,
                    ident=bytes(self._worker_id),
                    max_frame_bytes=self._config.max_frame_bytes,
                    on_close=self._lost,
                )
            )
        self.conn = await asyncio.shield(self._connecting)
        return self.conn

    async def call(self, msg: Any) -> Any:
        """A request that outlives a gcs restart: sent again to the restarted gcs (whose
        handlers take a repeated request as the first) until the reconnect timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.gcs_reconnect_timeout_s
        while True:
            conn = await self.connection()
            try:
                return await conn.call(msg)
            except ConnectionLost:
                if self._closed() or loop.time() >= deadline:
                    raise
                await asyncio.sleep(_RETRY_DELAY_S)

    async def subscribe(self, channel: str, key: bytes) -> None:
        """Follow a channel, now and after every reconnection to a restarted gcs."""
        self.topics.add((channel, key))
        await self.call(m.Subscribe(channel, key))

    def follow(self, channel: str, key: bytes) -> None:
        """``subscribe`` in the background, once."""
        if (channel, key) not in self.topics:
            self.topics.add((channel, key))
            spawn(self.subscribe(channel, key), f"following the gcs's {channel!r} channel")

    async def register_driver(self, registration: m.RegisterJob, topics: list[str]) -> JobID:
        """Register a driver's job and follow ``topics`` keyed by it. A gcs that goes away
        meanwhile is waited for, up to the reconnect timeout: a driver starting while the gcs
        restarts must not fail."""
        # Registered or not, a restarted gcs is asked afresh: a registration the old one
        # stored is ended as unclaimed once the reconnect timeout passes.
        raw = await self.call(registration)
        conn = self.conn
        self.job_id = job_id = JobID(raw)
        self.topics.update((channel, bytes(job_id)) for channel in topics)
        try:
            if conn is None or conn.closed:  # lost once it had answered, while no one was to regain it
                raise ConnectionLost("the gcs went away")
            for channel in topics:
                await conn.call(m.Subscribe(channel, bytes(job_id)))
        except ConnectionLost:  # reattached and subscribed once it is back
            self._lost(conn)
        return job_id

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def _lost(self, _conn: Connection | None) -> None:
        if self._closed() or self._regaining or (self._kind == "driver" and self.job_id is None):
            return
        self._regaining = True
        spawn(self._regain(), "reconnecting to the gcs")

    async def _regain(self) -> None:
        """Tasks and actor calls go on without the gcs: reconnect, say who we are, and
        subscribe again."""
        logger.warning("lost the connection to the gcs; reconnecting")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.gcs_reconnect_timeout_s
        try:
            while True:
                try:
                    conn = await self.connection()
                    if self.job_id is not None:
                        await conn.call(m.ReattachDriver(self.job_id))
                    for channel, key in list(self.topics):
                        await conn.call(m.Subscribe(channel, key))
                    break
                except ConnectionLost as e:  # gone again mid-way: once more, until the deadline
                    if self._closed() or loop.time() >= deadline:
                        if not self._closed():
                            logger.error("cannot reconnect to the gcs at %s: %s", self._address, e)
                        return
                    await asyncio.sleep(_RETRY_DELAY_S)
                except Exception as e:
                    if not self._closed():
                        logger.error("cannot reconnect to the gcs at %s: %s", self._address, e)
                    return
        finally:
            self._regaining = False
        if conn.closed:
            self._lost(conn)  # it went again just now: start over
            return
        logger.info("reconnected to the gcs")
        self.regained()
