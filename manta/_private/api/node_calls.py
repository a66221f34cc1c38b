"""Reaching node daemons from tools (``manta memory``, ``manta logs``, the state API's
worker and object listings, the head's metrics): over the node's Unix socket where this
host has it, else TCP; and asking every live node the same question at once."""

from __future__ import annotations

import asyncio
from typing import Any

from manta._private.common.config import Config
from manta._private.common.ids import NodeID
from manta._private.rpc import messages as m
from manta._private.rpc.endpoints import connect
from manta._private.rpc.transport import Connection, Dispatcher
from manta.exceptions import AuthenticationError, RpcError

# What a node (or the gcs) that does not answer raises: a lost connection, a timeout, a
# refused handshake, a handler that failed there.
UNREACHABLE: tuple[type[BaseException], ...] = (
    RpcError,
    AuthenticationError,
    OSError,
    asyncio.TimeoutError,
    TimeoutError,
)


async def connect_node(info: m.NodeInfo, token: bytes, config: Config, kind: str = "cli") -> Connection:
    """A new connection to the node daemon of ``info`` (the caller closes it); raises
    ConnectionLost when neither its Unix socket nor its TCP port answers."""
    if info.unix:
        try:
            return await _connect("unix:" + info.unix, token, config, kind)
        except Exception:
            pass  # another host's node, or its socket is gone: try TCP
    return await _connect(f"{info.host}:{info.port}", token, config, kind)


async def ask_nodes(
    nodes: list[m.NodeState],
    msg: Any,
    token: bytes,
    config: Config,
    local: tuple[NodeID, Any] | None = None,
    timeout: float = 30.0,
) -> list[tuple[m.NodeInfo, Any]]:
    """Each live node's answer to ``msg``, with the node (``local``: this process's node
    and an open connection to it, reused when given). A node that died or hangs, which
    the gcs has not yet noticed, has nothing to say: it is left out."""

    async def one(info: m.NodeInfo) -> tuple[m.NodeInfo, Any] | None:
        conn = None
        try:
            if local is not None and local[0] == info.node_id:
                return info, await asyncio.wait_for(local[1].call(msg), timeout)
            conn = await asyncio.wait_for(connect_node(info, token, config), timeout)
            return info, await asyncio.wait_for(conn.call(msg), timeout)
        except UNREACHABLE:
            return None
        finally:
            if conn is not None:
                conn.close()

    answers = await asyncio.gather(*(one(s.info) for s in nodes if s.alive))
    return [a for a in answers if a is not None]


async def _connect(address: str, token: bytes, config: Config, kind: str) -> Connection:
    return await connect(address, token, Dispatcher(), kind=kind, max_frame_bytes=config.max_frame_bytes)
