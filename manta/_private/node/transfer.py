"""Moving objects between node daemons.

A reader asks its own node daemon to pin an object and names a node that holds it; when
it is not here, the daemon *pulls* it. Over the authenticated RPC connection it asks the
source to pin the object for the length of the transfer and gets a single-use ticket;
then it opens a TCP stream (TLS when the cluster has TLS settings) to the source's data
port, presents the ticket, and the source streams the object's bytes straight out of its arena into the new secondary copy's
pages here (read in chunks of ``CHUNK_BYTES``, no copies in Python). Pulls of one object
share one transfer, and at most ``max_concurrent_pulls`` run at once, so a burst of gets
cannot exhaust memory or sockets. The source remembers which nodes took copies, so
freeing the object there frees the copies too.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import logging
import secrets
import socket
import ssl
import time
from typing import TYPE_CHECKING

from manta._private.common.aio import spawn
from manta._private.common.clock import Clock
from manta._private.common.ids import ObjectID
from manta._private.common.ratelimit import RateLimitedLog
from manta._private.rpc import messages as m
from manta._private.rpc import tls
from manta._private.rpc.connection_pool import ConnectionPool
from manta._private.rpc.transport import Connection, ConnectionLost, RemoteError

if TYPE_CHECKING:
    from manta._private.node.store_service import StoreService

logger = logging.getLogger(__name__)
_REFUSALS = RateLimitedLog(time.monotonic)

CHUNK_BYTES = 8 * 1024 * 1024
_TICKET_BYTES = 32
# How long a connection may take to present its ticket, and how many may be waiting to.
_TICKET_WAIT_S = 10.0
_MAX_UNPROVEN = 64
# Errors of accept() that mean "out of descriptors or memory for now", and how long to
# wait before trying again (doubling up to the cap).
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_ACCEPT_BACKOFF_S = 0.05
_ACCEPT_BACKOFF_MAX_S = 1.0
# A ticket not used within this long is void (the puller died between asking and reading).
_TICKET_TTL_S = 30.0
_SOCKET_BUFFER = 4 * 1024 * 1024
# Longest wait for the next bytes of a stream before the pull is given up.
_STALL_S = 30.0


class TransferFailed(Exception):
    """The source did not have the object, or went away during the transfer."""


class Transfers:
    def __init__(
        self, store: StoreService, peers: ConnectionPool, max_concurrent_pulls: int, host: str, clock: Clock
    ) -> None:
        self._store = store
        self._clock = clock  # tickets expire by it
        self._peers = peers
        self._host = host
        self._pulls: dict[ObjectID, asyncio.Future[None]] = {}
        self._slots = asyncio.Semaphore(max_concurrent_pulls)
        # Nodes that pulled a copy of each object served from here (their connections).
        self._copies: dict[ObjectID, set[Connection]] = {}
        self._tickets: dict[bytes, tuple[ObjectID, float]] = {}
        # Where each secondary copy here came from (its primary's node daemon).
        self._sources: dict[ObjectID, str] = {}
        self._listener: socket.socket | None = None
        self.port = 0
        # Accepted connections that have not presented their ticket yet, oldest first.
        self._unproven: dict[socket.socket, None] = {}
        self._tls = tls.current()  # object streams are encrypted when RPC is

    async def start(self) -> None:
        """Listen for data streams on an ephemeral port of the node's host."""
        self._listener = socket.create_server((self._host, 0), backlog=64)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        spawn(self._accept_loop(), "accepting object streams")

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    # -- pulling ------------------------------------------------------------------------------
    async def pull(self, object_id: ObjectID, address: str) -> None:
        """Make a local copy of ``object_id`` from the node daemon at ``address``; raises
        TransferFailed if that node does not have it or cannot be reached."""
        fut = self._pulls.get(object_id)
        if fut is None:
            fut = self._pulls[object_id] = asyncio.ensure_future(self._pull(object_id, address))
            fut.add_done_callback(lambda _f: self._pulls.pop(object_id, None))
        await asyncio.shield(fut)

    async def _pull(self, object_id: ObjectID, address: str) -> None:
        async with self._slots:
            try:
                peer = await self._peers.get(address)
                source: m.TransferSource | None = await peer.call(m.PinForTransfer(object_id))
            except (ConnectionLost, OSError, RemoteError) as e:
                raise TransferFailed(f"cannot reach the node at {address}: {e}") from None
            if source is None:
                raise TransferFailed(f"the node at {address} does not have it")
            try:
                await self._copy(peer, object_id, source, address)
                self._sources[object_id] = address
            finally:
                peer.notify(m.UnpinObjects([object_id]))

    async def _copy(
        self, peer: Connection, object_id: ObjectID, source: m.TransferSource, address: str
    ) -> None:
        created = await self._store.create(
            self, m.CreateObject(object_id, source.size, source.owner), primary=False
        )
        if created.exists:
            return  # a copy arrived (or was made here) meanwhile
        loop = asyncio.get_running_loop()
        # Allocating the pages up front (off the loop) is several times faster than
        # faulting them in one by one as the bytes arrive.
        await loop.run_in_executor(None, self._store.arena.fallocate, created.offset, created.size)
        view = self._store.arena.writable_view(created.offset, created.size)
        sock = _stream_socket()
        try:
            host = address.rpartition(":")[0]
            await asyncio.wait_for(loop.sock_connect(sock, (host, source.port)), 10.0)
            stream = await asyncio.wait_for(
                tls.Stream.open(
                    loop,
                    sock,
                    self._tls,
                    server_side=False,
                    server_hostname=tls.hostname_of(address),
                ),
                _STALL_S,
            )
            await stream.sendall(source.ticket)
            received = 0
            while received < source.size:
                chunk = view[received : min(received + CHUNK_BYTES, source.size)]
                # A source that stops sending (frozen, cut off) fails the pull instead of
                # holding its readers forever.
                n = await asyncio.wait_for(stream.recv_into(chunk), _STALL_S)
                if n == 0:
                    raise ConnectionLost(f"the stream ended after {received} of {source.size} bytes")
                received += n
        except BaseException as e:
            self._store.abort(self, m.AbortObject(object_id))
            if isinstance(e, (ConnectionLost, OSError, asyncio.TimeoutError)):
                raise TransferFailed(f"the transfer from {address} broke off: {e}") from None
            raise
        finally:
            sock.close()
            view.release()
        self._store.seal(self, m.SealObject(object_id))

    # -- serving ------------------------------------------------------------------------------
    async def pin_for_transfer(self, conn: Connection, msg: m.PinForTransfer) -> m.TransferSource | None:
        location = await self._store.pin(conn, m.PinObject(msg.object_id))
        if location is None:
            return None
        info = self._store.store.info(msg.object_id)
        assert info is not None
        self._copies.setdefault(msg.object_id, set()).add(conn)
        now = self._clock.monotonic()
        for stale in [t for t, (_o, expiry) in self._tickets.items() if expiry < now]:
            del self._tickets[stale]
        ticket = secrets.token_bytes(_TICKET_BYTES)
        self._tickets[ticket] = (msg.object_id, now + _TICKET_TTL_S)
        return m.TransferSource(location.size, info.owner, self.port, ticket)

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = _ACCEPT_BACKOFF_S
        while self._listener is not None:
            try:
                sock, peer = await loop.sock_accept(self._listener)
            except OSError as e:
                if self._listener is None:
                    return  # closed
                if e.errno in _OUT_OF_RESOURCES:
                    # Out of file descriptors (a flood, or a busy node): wait for some to
                    # close and keep serving; never stop accepting for good.
                    _REFUSALS.log(logger, f"the object-transfer port cannot accept now: {e}; retrying")
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, _ACCEPT_BACKOFF_MAX_S)
                continue
            backoff = _ACCEPT_BACKOFF_S
            if len(self._unproven) >= _MAX_UNPROVEN:
                # Connections that have not presented a ticket yet are capped, and the
                # oldest goes to make room: a real puller sends its ticket at once, so a
                # flood of silent connections cannot lock it out.
                oldest = next(iter(self._unproven))
                del self._unproven[oldest]
                _REFUSALS.log(logger, "dropped an object stream that sent no ticket: too many waiting")
                try:
                    oldest.shutdown(socket.SHUT_RDWR)  # its reader sees the end and closes it
                except OSError:
                    pass  # already gone
            spawn(self._serve(sock, peer), "streaming an object")

    async def _serve(self, sock: socket.socket, peer: object) -> None:
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        _tune(sock)
        self._unproven[sock] = None
        try:
            try:
                stream, ticket = await asyncio.wait_for(self._open_stream(loop, sock), _TICKET_WAIT_S)
            except ssl.SSLError as e:
                _REFUSALS.log(
                    logger, f"refused an object stream from {peer}: TLS handshake failed: {e.reason or e}"
                )
                return
            finally:
                self._unproven.pop(sock, None)
            entry = self._redeem(ticket)
            if entry is None:
                _REFUSALS.log(logger, f"refused an object stream from {peer}: unknown or expired ticket")
                return
            info = self._store.store.info(entry)
            if info is None or info.offset is None or info.pins == 0:
                logger.warning("object %s went away before its stream started", entry.hex())
                return
            view = self._store.arena.view(info.offset, info.size)
            try:
                await stream.sendall(view)
            finally:
                view.release()
        except (OSError, asyncio.TimeoutError, ConnectionLost) as e:
            logger.info("an object stream to %s broke off: %s", peer, e)
        finally:
            sock.close()

    async def _open_stream(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket
    ) -> tuple[tls.Stream, bytes]:
        """The stream (after TLS, when on) and the ticket its puller presents."""
        stream = await tls.Stream.open(loop, sock, self._tls, server_side=True)
        ticket = bytearray(_TICKET_BYTES)
        view = memoryview(ticket)
        got = 0
        while got < _TICKET_BYTES:
            n = await stream.recv_into(view[got:])
            if n == 0:
                raise ConnectionLost("the peer closed the stream")
            got += n
        return stream, bytes(ticket)

    def _redeem(self, ticket: bytes) -> ObjectID | None:
        for known in list(self._tickets):
            if hmac.compare_digest(known, ticket):
                object_id, expiry = self._tickets.pop(known)
                return object_id if expiry >= self._clock.monotonic() else None
        return None

    def source_died(self, address: str) -> None:
        """The node holding the primaries of some copies here died: their owners will make
        those objects again elsewhere and can no longer free these copies through it."""
        ids = [o for o, source in self._sources.items() if source == address]
        for object_id in ids:
            del self._sources[object_id]
        if ids:
            self._store.free(ids)

    def freed(self, object_ids: list[ObjectID]) -> None:
        """The owner freed these: so go the copies other nodes took from here."""
        by_conn: dict[Connection, list[ObjectID]] = {}
        for object_id in object_ids:
            self._sources.pop(object_id, None)
            for conn in self._copies.pop(object_id, ()):
                by_conn.setdefault(conn, []).append(object_id)
        for conn, ids in by_conn.items():
            conn.notify(m.FreeObjects(ids))

    def peer_gone(self, conn: Connection) -> None:
        for object_id in [o for o, holders in self._copies.items() if conn in holders]:
            holders = self._copies[object_id]
            holders.discard(conn)
            if not holders:
                del self._copies[object_id]


def _stream_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    _tune(sock)
    return sock


def _tune(sock: socket.socket) -> None:
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, _SOCKET_BUFFER)
        except OSError:
            pass  # the kernel's limit applies
