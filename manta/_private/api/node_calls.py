"""Asking every live node the same question at once (``manta memory``, the state API's
worker and object listings), over the node's Unix socket where this host has it."""

from __future__ import annotations

import asyncio
from typing import Any

from manta._private.common.config import Config
from manta._private.common.ids import NodeID
from manta._private.rpc import messages as m
from manta._private.rpc.transport import ConnectionLost, Dispatcher, connect


async def ask_nodes(
    nodes: list[m.NodeState],
    msg: Any,
    token: bytes,
    config: Config,
    local: tuple[NodeID, Any] | None = None,
    timeout: float = 30.0,
) -> list[tuple[m.NodeInfo, Any]]:
    """Each live node's answer to ``msg``, with the node (``local``: this process's node
    and an open connection to it, reused when given). A node that died and the gcs has
    not yet noticed has nothing to say: it is left out."""

    async def one(info: m.NodeInfo) -> tuple[m.NodeInfo, Any] | None:
        if local is not None and local[0] == info.node_id:
            return info, await asyncio.wait_for(local[1].call(msg), timeout)
        conn = None
        if info.unix:
            try:
                conn = await _connect("unix:" + info.unix, token, config)
            except Exception:
                conn = None  # another host's node, or its socket is gone: try TCP
        if conn is None:
            try:
                conn = await _connect(f"{info.host}:{info.port}", token, config)
            except ConnectionLost:
                return None
        try:
            return info, await asyncio.wait_for(conn.call(msg), timeout)
        finally:
            conn.close()

    answers = await asyncio.gather(*(one(s.info) for s in nodes if s.alive))
    return [a for a in answers if a is not None]


async def _connect(address: str, token: bytes, config: Config) -> Any:
    return await connect(address, token, Dispatcher(), kind="cli", max_frame_bytes=config.max_frame_bytes)
