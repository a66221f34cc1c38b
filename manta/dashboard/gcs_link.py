"""The HTTP service's own connection to the gcs (with the cluster's credential): token
checks, token management and the audit log go through it. Made when first needed, once
the head's address file exists, and made again after the gcs restarts."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

from manta._private.common.config import Config
from manta._private.common.session import ADDRESS_FILE, gcs_address_of, read_token
from manta._private.rpc.endpoints import connect_with_retry
from manta._private.rpc.messages import access as a
from manta._private.rpc.transport import Connection, Dispatcher
from manta.util.state._collect import Gatherer

logger = logging.getLogger("manta.dashboard")


class GcsLink:
    def __init__(self, session_dir: str, config: Config) -> None:
        self._session_dir = session_dir
        self._config = config
        self._conn: asyncio.Future[Connection] | None = None
        self._sending: set[asyncio.Future[None]] = set()

    async def _connect(self) -> Connection:
        path = os.path.join(self._session_dir, ADDRESS_FILE)
        while not os.path.exists(path):  # the head is still starting
            await asyncio.sleep(0.05)
        with open(path) as f:
            info = json.load(f)
        address = gcs_address_of(info)
        return await connect_with_retry(
            address,
            read_token(self._session_dir),
            Dispatcher(),
            attempts_s=self._config.gcs_reconnect_timeout_s,
            kind="dashboard",
            max_frame_bytes=self._config.max_frame_bytes,
        )

    async def connection(self) -> Connection:
        fut = self._conn
        if (
            fut is not None
            and fut.done()
            and (fut.cancelled() or fut.exception() is not None or fut.result().closed)
        ):
            fut = None
        if fut is None:
            fut = self._conn = asyncio.ensure_future(self._connect())
        return await asyncio.shield(fut)

    async def call(self, msg: Any, timeout: float = 10.0) -> Any:
        conn = await asyncio.wait_for(self.connection(), timeout)
        return await asyncio.wait_for(conn.call(msg), timeout)

    def gatherer(self) -> Gatherer:
        """What the state API's listings gather through: this link, and the cluster's
        credential for asking the nodes."""
        return Gatherer(self.call, read_token(self._session_dir), self._config)

    def node_credential(self) -> tuple[bytes, Config]:
        """The cluster's credential and settings, for asking node daemons directly."""
        return read_token(self._session_dir), self._config

    def audit(self, event: str, **fields: Any) -> None:
        """Records an event in the head's audit log, without waiting for it."""

        async def send() -> None:
            try:
                (await self.connection()).notify(a.AuditAppend(event, fields))
            except Exception as e:  # the gcs is away: the event is lost, and said so
                logger.warning("could not record %s in the audit log: %s", event, e)

        task = asyncio.ensure_future(send())
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def close(self) -> None:
        """Sends what is still being sent, then closes."""
        if self._sending:
            await asyncio.wait(self._sending, timeout=2.0)
        fut = self._conn
        if fut is None:
            return
        if not fut.done():
            fut.cancel()
        elif not fut.cancelled() and fut.exception() is None:
            fut.result().close()
