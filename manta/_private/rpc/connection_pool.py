"""One shared connection per peer address, made when first needed and again after it
closes (a node daemon's connections to other nodes' transfer ports)."""

from __future__ import annotations

import asyncio
from typing import Any

from manta._private.rpc.endpoints import connect
from manta._private.rpc.transport import Connection, ConnectionLost, Dispatcher


class ConnectionPool:
    """One shared, lazily made connection per peer address; concurrent callers share the
    attempt, and a closed or failed connection is made again on next use."""

    def __init__(self, token: bytes, dispatcher: Dispatcher, **connect_kwargs: Any) -> None:
        self._token = token
        self._dispatcher = dispatcher
        self._kwargs = connect_kwargs
        self._conns: dict[str, asyncio.Future[Connection]] = {}

    async def get(self, address: str, ident: bytes = b"") -> Connection:
        """The connection to ``address``; with ``ident``, only if the process there says it
        is that one (a port can be reused by another process after its owner exited)."""
        fut = self._conns.get(address)
        if fut is not None and fut.done() and (fut.exception() is not None or fut.result().closed):
            fut = None
        if fut is None:
            fut = asyncio.ensure_future(connect(address, self._token, self._dispatcher, **self._kwargs))
            self._conns[address] = fut
        conn = await asyncio.shield(fut)
        if ident and conn.peer_ident != ident:
            raise ConnectionLost(f"the process at {address} is not the one sought (it has exited)")
        return conn

    def drop(self, address: str) -> None:
        """Close the connection to ``address`` (its peer is known to be gone): calls waiting
        on it fail now instead of when TCP gives up."""
        fut = self._conns.pop(address, None)
        if fut is not None and fut.done() and not fut.cancelled() and fut.exception() is None:
            fut.result().close()

    def close(self) -> None:
        for address in list(self._conns):
            self.drop(address)
