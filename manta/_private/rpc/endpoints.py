"""Where connections come from: a server accepting authenticated connections on TCP and Unix
sockets, and a client dialling one (with backoff while the server comes up). What a
connection then does is ``transport``'s."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
from collections.abc import Callable
from typing import Any

from manta._private.common.config import PROTOCOL_VERSION
from manta._private.common.version import __version__
from manta._private.rpc import auth
from manta._private.rpc import tls as tls_
from manta._private.rpc.messages import Hello
from manta._private.rpc.peers import port_holder
from manta._private.rpc.transport import Connection, ConnectionLost, Dispatcher
from manta.exceptions import PermissionDeniedError

# Connections still to authenticate a server keeps per listener; past it, it refuses more.
MAX_PENDING_HANDSHAKES = 256


class RpcServer:
    """Accepts authenticated connections on TCP and/or Unix sockets."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        verifier: auth.Verifier | auth.AsyncVerifier,
        *,
        max_frame_bytes: int,
        on_connect: Callable[[Connection], None] | None = None,
        on_disconnect: Callable[[Connection], None] | None = None,
        on_refused: Callable[[str, str], None] | None = None,
        ident: bytes = b"",
        tls: tls_.Tls | str | None = "process",
    ) -> None:
        self._dispatcher = dispatcher
        self._verifier = verifier
        self._on_refused = on_refused
        # TLS on the TCP listener: this process's settings unless told otherwise.
        self._tls = tls_.current() if isinstance(tls, str) else tls
        self._ident = ident  # told to every peer at the handshake
        self._max_frame = max_frame_bytes
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._servers: list[asyncio.AbstractServer] = []
        # Socket files this server made (path, inode): removed when it closes.
        self._unix_paths: list[tuple[str, int]] = []
        self.connections: set[Connection] = set()
        # Connections still to authenticate, per listener: each listener has its own
        # budget, so a flood on the TCP port cannot refuse local clients on the Unix socket.
        self._handshaking: dict[str, set[Connection]] = {"tcp": set(), "unix": set()}

    def _protocol(self, listener: str) -> Connection:
        conn = Connection(
            self._dispatcher,
            verifier=self._verifier,
            on_refused=self._on_refused,
            tls=self._tls if listener == "tcp" else None,
            max_frame_bytes=self._max_frame,
            on_ready=self._ready,
            on_close=self._closed,
            ident=self._ident,
        )
        pending = self._handshaking[listener]
        pending.add(conn)
        if len(pending) > MAX_PENDING_HANDSHAKES:
            # Too many peers that have not authenticated: refuse this one at once.
            conn.refuse_when_made = True
        return conn

    def _ready(self, conn: Connection) -> None:
        for pending in self._handshaking.values():
            pending.discard(conn)
        self.connections.add(conn)
        if self._on_connect is not None:
            self._on_connect(conn)

    def _closed(self, conn: Connection) -> None:
        for pending in self._handshaking.values():
            pending.discard(conn)
        if conn in self.connections:
            self.connections.discard(conn)
            if self._on_disconnect is not None:
                self._on_disconnect(conn)

    async def listen_tcp(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        try:
            server = await loop.create_server(lambda: self._protocol("tcp"), host, port, reuse_address=True)
        except OSError as e:
            why = e.strerror or str(e)
            if e.errno == errno.EADDRINUSE:
                why = f"the port is already in use{port_holder(port)}"
            raise OSError(e.errno, f"cannot listen on {host}:{port}: {why}") from None
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def listen_socket(self, sock: socket.socket) -> int:
        """Serve on a TCP socket already bound (by a launcher that had to know the port)."""
        server = await asyncio.get_running_loop().create_server(lambda: self._protocol("tcp"), sock=sock)
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def listen_unix(self, path: str) -> None:
        loop = asyncio.get_running_loop()
        if os.path.exists(path):
            os.unlink(path)
        server = await loop.create_unix_server(lambda: self._protocol("unix"), path)
        os.chmod(path, 0o600)
        self._servers.append(server)
        self._unix_paths.append((path, os.stat(path).st_ino))

    def close(self) -> None:
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            conn.close()
        for path, inode in self._unix_paths:
            # Only our own socket file: a successor may already listen at the same path.
            with contextlib.suppress(OSError):
                if os.stat(path).st_ino == inode:
                    os.unlink(path)
        self._unix_paths = []


async def connect(
    address: str,
    token: bytes,
    dispatcher: Dispatcher,
    *,
    kind: str,
    ident: bytes = b"",
    info: dict[str, Any] | None = None,
    max_frame_bytes: int,
    timeout: float = 10.0,
    on_close: Callable[[Connection], None] | None = None,
    tls: tls_.Tls | str | None = "process",
) -> Connection:
    """Open and authenticate a connection to ``unix:/path`` or ``host:port``; ``kind`` says
    what this process is (the server decides what it may do from ``token``). Over TCP,
    TLS is used when this process has TLS settings (unless ``tls`` says otherwise)."""
    loop = asyncio.get_running_loop()
    hello = Hello(PROTOCOL_VERSION, __version__, token, kind, ident, info or {})
    settings = tls_.current() if isinstance(tls, str) else tls

    def factory() -> Connection:
        return Connection(
            dispatcher,
            max_frame_bytes=max_frame_bytes,
            on_close=on_close,
            hello=hello,
            tls=None if address.startswith("unix:") else settings,
            server_hostname=tls_.hostname_of(address),
        )

    try:
        if address.startswith("unix:"):
            coro = loop.create_unix_connection(factory, address[5:])
        else:
            host, _, port = address.rpartition(":")
            coro = loop.create_connection(factory, host, int(port))
        _, conn = await asyncio.wait_for(coro, timeout)
    except (OSError, asyncio.TimeoutError, ValueError) as e:
        raise ConnectionLost(f"cannot connect to {address}: {e or type(e).__name__}") from None
    try:
        await asyncio.wait_for(asyncio.shield(conn.handshake), timeout)
    except BaseException as e:
        conn.close()  # not left open: its answer could arrive after its loop is gone
        if isinstance(e, PermissionDeniedError) or not isinstance(e, (OSError, asyncio.TimeoutError)):
            raise  # final (the server said no), or not ours to translate
        raise ConnectionLost(f"cannot connect to {address}: {e or type(e).__name__}") from None
    return conn


async def connect_with_retry(
    address: str,
    token: bytes,
    dispatcher: Dispatcher,
    *,
    attempts_s: float,
    **kwargs: Any,
) -> Connection:
    """``connect`` with exponential backoff for up to ``attempts_s`` seconds.

    Authentication and version errors are final and raised at once."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + attempts_s
    delay = 0.005
    while True:
        try:
            return await connect(address, token, dispatcher, **kwargs)
        except ConnectionLost as e:
            if loop.time() + delay > deadline:
                raise ConnectionLost(f"{e} (retried for {attempts_s:g} s)") from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
