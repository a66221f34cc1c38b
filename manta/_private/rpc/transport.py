"""Authenticated, multiplexed RPC connections over asyncio (TCP or Unix sockets).

Wire format: each frame is a 4-byte big-endian length and a msgpack array
``[kind, request_id, body]``. ``body`` of a request or notification is a message (see
``codec``); of a reply, the handler's return value; of an error, ``[type, text, traceback]``.

Every connection starts with a handshake: the client's first frame is ``Hello`` with the
protocol version and a token; the server's verifier decides the role the token grants
(``auth``) and the server answers ``Welcome`` or an error frame, then closes. Until then a
peer may send at most one small frame, so an unauthenticated peer can make the server
allocate almost nothing.

Both ends can send requests on one connection; handlers are looked up by message type in
a ``Dispatcher``, which also names the least role each message needs (``cluster`` unless
registered otherwise). A handler's exception becomes an error reply and a log line, never
a dead daemon. Writes are coalesced: frames queued in one loop turn go out in one
``writelines``. A handler registered to answer later gets a ``Reply`` that any thread can
answer: straight onto the socket when nothing waits to go out before it (a pushed task's
result, from the thread that ran it, without waking the loop), else through the loop.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import socket
import ssl
import time
import traceback
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from manta._private.common.config import PROTOCOL_VERSION
from manta._private.common.ratelimit import RateLimitedLog
from manta._private.common.version import __version__
from manta._private.rpc import auth, codec
from manta._private.rpc import tls as tls_
from manta._private.rpc.messages import Hello, Welcome
from manta._private.rpc.peers import foreign_local_user, format_peer
from manta._private.rpc.thread_writes import ThreadWrites
from manta.exceptions import AuthenticationError, PermissionDeniedError, RpcError, VersionMismatchError

logger = logging.getLogger(__name__)
# What peers that fail the handshake or break the protocol make this process log: bounded,
# so a flood of bad connections cannot fill the disk (the excess is counted and reported).
_REFUSALS = RateLimitedLog(time.monotonic)

KIND_REQUEST, KIND_REPLY, KIND_ERROR, KIND_NOTIFY = 0, 1, 2, 3
_CLUSTER_RANK = auth.RANK["cluster"]
# The refusal a plaintext client of a TLS server gets, as an error frame it can read.
_NEEDS_TLS = ("AuthenticationError", tls_.NEEDS_TLS)
_HEADER = 4
_MAX_HANDSHAKE_FRAME = 64 * 1024
# A peer must authenticate this soon after connecting (and a server lets only so many be
# connecting at once: endpoints.py): an unauthenticated peer can make it allocate almost nothing.
HANDSHAKE_TIMEOUT_S = 10.0
# Replies and notifications a server keeps queued for a peer with a user token that does
# not read them (cluster components are trusted to read theirs).
MAX_UNREAD_BYTES = 64 << 20

# The error a server answers a handshake it cannot decide now with (its verifier could not
# ask: the gcs restarts); unlike a refusal, dialling again may succeed.
TRY_AGAIN = "TryAgain"

_M = TypeVar("_M")
Handler = Callable[["Connection", Any], Any]
# A handler registered with ``answers_later``: answers through the ``Reply`` it is given.
LaterHandler = Callable[["Connection", Any, "Reply"], None]


class RemoteError(RpcError):
    """A handler on the other side raised; carries its type name and traceback."""

    def __init__(self, type_name: str, text: str, remote_traceback: str = "") -> None:
        super().__init__(f"{type_name}: {text}")
        self.type_name = type_name
        self.text = text
        self.remote_traceback = remote_traceback


class ConnectionLost(RpcError):
    """The connection closed before a reply arrived."""


class Dispatcher:
    """Maps message types to handlers (which take ``(connection, message)``) and to the
    least role a peer needs to send each; ``cluster`` unless a server opens one up.

    A handler registered with ``answers_later`` takes ``(connection, message, reply)``
    instead, returns nothing, and answers through ``reply`` (a ``Reply``) once, from any
    thread."""

    def __init__(self) -> None:
        self._handlers: dict[type, tuple[Handler, str]] = {}
        self.answers_later: set[type] = set()

    def register(
        self,
        message_type: type,
        handler: Handler | LaterHandler,
        role: str = "cluster",
        answers_later: bool = False,
    ) -> None:
        assert role in auth.ROLES, role
        self._handlers[message_type] = (handler, role)  # type: ignore[assignment]
        if answers_later:
            self.answers_later.add(message_type)

    def handler_for(self, message_type: type) -> tuple[Handler, str] | None:
        return self._handlers.get(message_type)


class Connection(asyncio.Protocol):
    """One end of an RPC connection. Use only from its event loop's thread."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        verifier: auth.Verifier | auth.AsyncVerifier | None = None,
        max_frame_bytes: int,
        on_ready: Callable[[Connection], None] | None = None,
        on_close: Callable[[Connection], None] | None = None,
        on_refused: Callable[[str, str], None] | None = None,
        hello: Hello | None = None,
        ident: bytes = b"",
        tls: tls_.Tls | None = None,
        server_hostname: str | None = None,
    ) -> None:
        assert (verifier is None) != (hello is None), "a server verifies, a client says hello"
        self._on_refused = on_refused  # told (peer, why) of each refused handshake
        # TLS settings, used on TCP (a Unix socket stays plain); the session once made.
        self._tls_settings = tls
        self._server_hostname = server_hostname
        self._tls: tls_.TlsPump | None = None
        self._dispatcher = dispatcher
        self._ident = ident  # who a server says it is in its Welcome
        self._verifier = verifier
        # A verifier that must ask someone (the client port asks the gcs about user tokens).
        self._verify_async = inspect.iscoroutinefunction(verifier)
        self._verifying = False
        self._is_server = verifier is not None
        self._max_frame = max_frame_bytes
        self._on_ready = on_ready
        self._close_callbacks: list[Callable[[Connection], None]] = []
        self._pace_callbacks: list[Callable[[bool], None]] = []
        self.made = self.last_heard = time.monotonic()  # made; the peer's last frame arrived
        self.reading_paused = False
        if on_close is not None:
            self._close_callbacks.append(on_close)
        self._hello = hello
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._seen_bytes = False
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._writes = ThreadWrites()  # held for every write (see thread_writes)
        self._request_ids = itertools.count(1)  # next() is atomic: threads may call too
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._authenticated = False
        self.handshake: asyncio.Future[Welcome] = self._loop.create_future()
        self.closed = False
        self.peer = "?"
        # Who is on the other side, from the handshake: on a server, the role its token
        # earned and the kind it says it is; on a client, the role the server granted us.
        self.peer_role = ""
        self._peer_rank = -1  # the role's rank: checked on every request a server handles
        self.peer_name = ""
        self.peer_kind = ""
        self.granted_role = ""
        self.peer_ident = b""
        self.peer_info: dict[str, Any] = {}
        # Set by the server when it has too many unauthenticated connections already.
        self.refuse_when_made = False

    # -- asyncio.Protocol ------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's are not subclasses
        sock = transport.get_extra_info("socket")
        peername = transport.get_extra_info("peername")
        self.peer = format_peer(peername, sock)
        is_tcp = sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6)
        if is_tcp:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls_settings is not None:
                settings = self._tls_settings
                context = settings.server if self._is_server else settings.client
                self._tls = tls_.TlsPump(context, self._is_server, self._server_hostname)
        if not self._is_server:
            assert self._hello is not None
            self._send(KIND_REQUEST, 0, self._hello)  # goes out once TLS is up, if any
            if self._tls is not None:
                self._tls_step(b"")
        elif self.refuse_when_made:
            _REFUSALS.log(
                logger, f"refusing connection from {self.peer}: too many unauthenticated connections"
            )
            self.close()
        elif (uid := foreign_local_user(sock)) is not None:
            _REFUSALS.log(
                logger, f"refusing connection from {self.peer}: another user (uid {uid}) on this host"
            )
            if self._on_refused is not None:
                self._on_refused(self.peer, f"another user (uid {uid}) on this host")
            self.close()
        else:
            self._loop.call_later(HANDSHAKE_TIMEOUT_S, self._handshake_deadline)

    def _handshake_deadline(self) -> None:
        if not self._authenticated and not self.closed:
            _REFUSALS.log(
                logger,
                f"closing connection from {self.peer}: no handshake within {HANDSHAKE_TIMEOUT_S:.0f} s",
            )
            self.close()

    def data_received(self, data: bytes) -> None:
        if self._tls is not None:
            self._tls_step(data)
        elif self._is_server and not self._authenticated and not self._buffer and data[:1] == b"\x16":
            self._refuse_plain(tls_.NO_TLS_HERE)  # a TLS ClientHello: we cannot answer it
        else:
            self._frames_received(data)

    def _tls_step(self, data: bytes) -> None:
        """Feed TLS bytes in; send what TLS answers; handle the plaintext that came out."""
        assert self._tls is not None and self._transport is not None
        if self._is_server and not self._tls.handshaken and data and not self._seen_bytes:
            self._seen_bytes = True
            if data[0] != tls_.HANDSHAKE_RECORD:  # a client without TLS: tell it so, plainly
                self._tls = None
                self._refuse(*_NEEDS_TLS)
                return
        was_handshaken = self._tls.handshaken
        try:
            plain, to_send = self._tls.feed(data)
        except ssl.SSLError as e:
            self._tls_failed(e)
            return
        if to_send:
            self._transport.write(to_send)
        if self._tls.handshaken and not was_handshaken:
            self._flush()  # what waited for the handshake (a client's Hello)
        if plain:
            self._frames_received(plain)

    def _tls_failed(self, error: ssl.SSLError) -> None:
        why = f"TLS handshake failed: {error.reason or error}"
        if self._is_server:
            _REFUSALS.log(logger, f"refused connection from {self.peer}: {why}")
            if self._on_refused is not None:
                self._on_refused(self.peer, why)
        elif not self.handshake.done():
            self.handshake.set_exception(AuthenticationError(f"{why} (with {self.peer})"))
        self._out = []  # a client's Hello, with its token, must never go out in the clear
        alert = self._tls.pending() if self._tls is not None else b""
        if alert and self._transport is not None:
            self._transport.write(alert)  # tells the peer why (its log names the alert)
        self._tls = None
        self.close()

    def _refuse_plain(self, why: str) -> None:
        _REFUSALS.log(logger, f"refused connection from {self.peer}: {why}")
        if self._on_refused is not None:
            self._on_refused(self.peer, why)
        self.close()

    def _frames_received(self, data: bytes) -> None:
        buf = self._buffer
        buf += data
        pos = 0
        end = len(buf)
        # Frames are decoded from a view of the buffer, not from copies of it (a large
        # frame would be copied twice more on every hop); decoding copies what it keeps.
        with memoryview(buf) as view:
            while end - pos >= _HEADER:
                size = int.from_bytes(view[pos : pos + _HEADER], "big")
                limit = self._max_frame if self._authenticated else _MAX_HANDSHAKE_FRAME
                if size > limit:
                    self._protocol_error(f"frame of {size} bytes exceeds the limit of {limit}")
                    return
                if end - pos - _HEADER < size:
                    break
                with view[pos + _HEADER : pos + _HEADER + size] as frame:
                    pos += _HEADER + size
                    self._on_frame(frame)
                if self.closed:
                    return
        if pos:
            del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        if (
            self._tls is not None
            and not self._tls.handshaken
            and not self._is_server
            and not self.handshake.done()
        ):
            # Final, not worth retrying: the two ends disagree about TLS.
            self.handshake.set_exception(
                AuthenticationError(
                    f"{self.peer} closed the connection during the TLS handshake: does the server "
                    "have TLS settings (MANTA_TLS_CA/CERT/KEY), and a certificate this client's CA signed?"
                )
            )
        self._mark_closed(exc)

    # -- sending ---------------------------------------------------------------------
    def call(self, msg: Any) -> asyncio.Future[Any]:
        """Send a request; the returned future resolves to the reply."""
        fut: asyncio.Future[Any] = self._loop.create_future()
        if self.closed:
            fut.set_exception(ConnectionLost(f"connection to {self.peer} is closed"))
            return fut
        req_id = next(self._request_ids)
        self._pending[req_id] = fut
        self._send(KIND_REQUEST, req_id, msg)
        return fut

    def notify(self, msg: Any) -> None:
        """Send a one-way message; errors on the other side are only logged there."""
        if not self.closed:
            self._send(KIND_NOTIFY, 0, msg)

    def close(self, abort: bool = False) -> None:
        """Close after sending what is queued, or with ``abort`` at once (a dead link would
        never take what is queued)."""
        if self._transport is not None and not self.closed:
            if abort:
                self._transport.abort()
            else:
                self._flush()
                self._transport.close()
        self._mark_closed(None)

    def add_close_callback(self, callback: Callable[[Connection], None]) -> None:
        if self.closed:
            callback(self)
        else:
            self._close_callbacks.append(callback)

    def _send(self, kind: int, req_id: int, body: Any) -> None:
        payload = codec.encode([kind, req_id, body])
        # One call: a thread appending a frame of its own (call_from_thread) never lands
        # between a header and its payload.
        self._out.extend((len(payload).to_bytes(_HEADER, "big"), payload))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._out or self._transport is None or self._transport.is_closing():
            self._out = []
            return
        with self._writes.lock:
            if self._tls is None:
                self._transport.writelines(self._out)
            elif self._tls.handshaken:
                self._transport.write(self._tls.encrypt(b"".join(self._out)))
            else:
                return  # kept until the handshake is done
            self._out = []
        if (
            self._is_server
            and self._peer_rank < _CLUSTER_RANK
            and self._transport.get_write_buffer_size() > MAX_UNREAD_BYTES
        ):
            # A user's client that asks and does not read the answers would make this
            # process buffer them without end: it is cut off instead.
            _REFUSALS.log(
                logger, f"closing connection from {self.peer}: it left {MAX_UNREAD_BYTES >> 20} MiB unread"
            )
            self._transport.abort()
            self._mark_closed(ConnectionLost("the peer did not read its replies"))

    @property
    def takes_thread_writes(self) -> bool:
        """Whether other threads may write to this connection now (``call_from_thread``)."""
        return self._writes.enabled

    def call_from_thread(
        self, msg: Any, on_reply: Callable[[asyncio.Future[Any]], None]
    ) -> asyncio.Future[Any] | None:
        """Any thread: send a request, straight to the socket when nothing waits to go out
        before it, else through the loop; ``on_reply`` is called on the loop with the
        reply's future. None, sending nothing, if this connection does not take writes
        from threads (see ``allow_writes_from_threads``) or is closed."""
        if not self._writes.enabled:
            return None
        fut: asyncio.Future[Any] = self._loop.create_future()
        fut.add_done_callback(on_reply)  # before the reply can arrive
        req_id = next(self._request_ids)
        frame = _frame(KIND_REQUEST, req_id, msg)
        with self._writes.lock:
            if self.closed or not self._writes.enabled:
                return None
            self._pending[req_id] = fut  # under the lock: a closing connection fails it
            if not self._write_locked(frame):
                self._out.append(frame)
                self._loop.call_soon_threadsafe(self._flush)
        return fut

    def _write_from_thread(self, kind: int, req_id: int, body: Any) -> bool:
        """Any thread: write a frame straight to the socket if nothing waits to go out
        before it; False if it was not (the caller sends it through the loop)."""
        if not self._writes.enabled:
            return False
        return self._write_bytes_from_thread(_frame(kind, req_id, body))

    def _write_bytes_from_thread(self, frames: bytes) -> bool:
        with self._writes.lock:
            return self._write_locked(frames)

    def _write_locked(self, frame: bytes) -> bool:
        """With the write lock held: write ``frame`` from this thread if nothing waits to
        go out before it (False: it was not)."""
        transport = self._transport
        if (
            self._out
            or self.closed
            or transport is None
            or transport.is_closing()
            or transport.get_write_buffer_size() > 0
        ):
            return False
        rest = self._writes.write(frame)
        if rest is None:
            return False
        if rest:  # the socket's buffer is full: the rest goes first, from the loop
            self._out.insert(0, rest)
            self._loop.call_soon_threadsafe(self._flush)
        return True

    def allow_writes_from_threads(self) -> None:
        """Loop thread: let other threads write to this (plain, open) connection."""
        if self._writes.enabled:
            return  # (asked again with every answer sent from the loop)
        sock = None if self._transport is None else self._transport.get_extra_info("socket")
        if self._tls is None and not self.closed and sock is not None:
            self._writes.enable(sock)

    # -- flow control: a relay passes a slow reader's pace back to its writer -----------
    def pause_writing(self) -> None:  # asyncio: the send buffer passed its high-water mark
        for callback in self._pace_callbacks:
            callback(True)

    def resume_writing(self) -> None:
        for callback in self._pace_callbacks:
            callback(False)

    def on_pace(self, callback: Callable[[bool], None]) -> None:
        """``callback(True)`` when the peer reads slower than we send, ``(False)`` when it caught up."""
        self._pace_callbacks.append(callback)

    def set_send_buffer(self, high: int) -> None:
        """Let up to ``high`` bytes wait to be sent before the pace callbacks say "slow"
        (asyncio's default, 64 KiB, stops and starts a bulk transfer every few frames)."""
        if self._transport is not None:
            self._transport.set_write_buffer_limits(high=high)

    def pause_reading(self, paused: bool) -> None:
        """Stop (or go on) reading the peer: what it sends cannot be passed on as fast."""
        self.reading_paused = paused
        if self._transport is not None and not self._transport.is_closing():
            if paused:
                self._transport.pause_reading()
            else:
                self._transport.resume_reading()

    # -- receiving -------------------------------------------------------------------
    def _on_frame(self, frame: bytes | memoryview) -> None:
        self.last_heard = time.monotonic()
        try:
            kind, req_id, body = codec.decode(frame)
        except (codec.DecodeError, ValueError, TypeError) as e:
            self._protocol_error(f"bad frame: {e}")
            return
        if not self._authenticated:
            self._on_handshake_frame(kind, body)
            return
        if kind == KIND_REPLY or kind == KIND_ERROR:
            fut = self._pending.pop(req_id, None)
            if fut is None or fut.done():
                return
            if type(body) is codec.Malformed:
                fut.set_exception(RpcError(f"the peer's reply is {body.reason}"))
            elif kind == KIND_REPLY:
                fut.set_result(body)
            else:
                fut.set_exception(_remote_error(body))
        elif kind == KIND_REQUEST or kind == KIND_NOTIFY:
            self._handle(kind, req_id, body)
        else:
            self._protocol_error(f"unknown frame kind {kind!r}")

    def _handle(self, kind: int, req_id: int, body: Any) -> None:
        malformed = type(body) is codec.Malformed
        cls = body.cls if malformed else type(body)
        entry = self._dispatcher.handler_for(cls)
        if entry is None:
            self._reply_error(kind, req_id, "UnknownMessage", f"no handler for {cls.__name__}")
            return
        handler, needed = entry
        # Cluster peers (the task path) may send anything: one comparison decides.
        if self._is_server and self._peer_rank < _CLUSTER_RANK and self._peer_rank < auth.RANK[needed]:
            _REFUSALS.log(logger, f"refused {cls.__name__} from {self.peer}: role {self.peer_role!r}")
            self._reply_error(
                kind,
                req_id,
                "PermissionDeniedError",
                f"{cls.__name__} needs the {needed!r} role; this connection's token has {self.peer_role!r}",
            )
            return
        if malformed:  # its fields do not match its class: refused before any handler sees it
            logger.info("refused a message from %s: %s", self.peer, body.reason)
            self._reply_error(kind, req_id, "ValueError", body.reason)
            return
        try:
            if cls in self._dispatcher.answers_later:
                handler(self, body, Reply(self, req_id))  # type: ignore[call-arg]
                return
            result = handler(self, body)
        except Exception as e:
            self._handler_failed(kind, req_id, body, e)
            return
        if isinstance(result, asyncio.Future):
            # A future (a pushed task's reply, say) is answered from its callback: no task
            # and no coroutine per request, on the path every task takes.
            result.add_done_callback(partial(self._future_done, kind, req_id, body))
        elif inspect.isawaitable(result):
            task = self._loop.create_task(self._finish(kind, req_id, body, result))
            _background_tasks.add(task)
            task.add_done_callback(_background_tasks.discard)
        elif kind == KIND_REQUEST:
            self._send(KIND_REPLY, req_id, result)

    def _future_done(self, kind: int, req_id: int, body: Any, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            self._reply_error(kind, req_id, "Cancelled", "the handler was cancelled")
            return
        error = fut.exception()
        if isinstance(error, Exception):
            self._handler_failed(kind, req_id, body, error)
        elif error is not None:
            raise error  # a BaseException (KeyboardInterrupt, SystemExit): not the peer's to see
        elif kind == KIND_REQUEST:
            self._send(KIND_REPLY, req_id, fut.result())

    async def _finish(self, kind: int, req_id: int, body: Any, pending: Awaitable[Any]) -> None:
        try:
            result = await pending
        except asyncio.CancelledError:
            self._reply_error(kind, req_id, "Cancelled", "the handler was cancelled")
            return
        except Exception as e:
            self._handler_failed(kind, req_id, body, e)
            return
        if kind == KIND_REQUEST:
            self._send(KIND_REPLY, req_id, result)

    def _handler_failed(self, kind: int, req_id: int, body: Any, error: Exception) -> None:
        # Expected refusals (bad arguments from a peer) are not bugs: log them briefly.
        level = logging.INFO if isinstance(error, (ValueError, KeyError, LookupError)) else logging.ERROR
        logger.log(
            level,
            "handler for %s from %s failed: %s",
            type(body).__name__,
            self.peer,
            error,
            exc_info=level == logging.ERROR,
        )
        self._reply_error(kind, req_id, type(error).__name__, str(error), traceback.format_exc())

    def _reply_error(self, kind: int, req_id: int, type_name: str, text: str, tb: str = "") -> None:
        if kind == KIND_REQUEST and not self.closed:
            self._send(KIND_ERROR, req_id, [type_name, text, tb])

    # -- handshake -------------------------------------------------------------------
    def _on_handshake_frame(self, kind: int, body: Any) -> None:
        if self._verifying:  # a peer that does not wait for its Welcome
            self._protocol_error("a frame arrived before the handshake finished")
        elif self._is_server and self._verify_async and isinstance(body, Hello):
            self._verifying = True
            task = self._loop.create_task(self._verify_then_admit(body))
            _background_tasks.add(task)
            task.add_done_callback(_background_tasks.discard)
        elif self._is_server:
            self._server_handshake(body)
        elif kind == KIND_REPLY and isinstance(body, Welcome):
            self._authenticated = True
            self.granted_role = body.role
            self.peer_kind = "server"
            self.peer_ident = body.ident
            self.peer_info = body.info
            if not self.handshake.done():
                self.handshake.set_result(body)
        else:
            error = _remote_error(body) if kind == KIND_ERROR else RpcError("bad handshake reply")
            if not self.handshake.done():
                self.handshake.set_exception(error)
            self.close()

    async def _verify_then_admit(self, hello: Hello) -> None:
        assert self._verifier is not None
        try:
            grant = await self._verifier(hello.token)  # type: ignore[misc]
        except Exception as e:  # not a refusal: the client may dial again
            self._refuse(TRY_AGAIN, f"the credential could not be checked now ({e}): try again")
            return
        self._verifying = False
        if not self.closed:
            self._server_handshake(hello, lambda _token: grant)

    def _server_handshake(self, hello: Any, verify: auth.Verifier | None = None) -> None:
        assert self._verifier is not None
        admitted = auth.admit(hello, verify or self._verifier)  # type: ignore[arg-type]
        if isinstance(admitted, auth.Refusal):
            self._refuse(admitted.type_name, admitted.text)
            return
        self._authenticated = True
        self.peer_role = admitted.role
        self._peer_rank = auth.RANK[admitted.role]
        self.peer_name = admitted.name
        self.peer_kind = hello.kind
        self.peer_ident = hello.ident
        self.peer_info = hello.info
        self._send(KIND_REPLY, 0, Welcome(PROTOCOL_VERSION, __version__, admitted.role, self._ident, {}))
        if not self.handshake.done():
            self.handshake.set_result(
                Welcome(hello.protocol, hello.version, admitted.role, hello.ident, hello.info)
            )
        if self._on_ready is not None:
            self._on_ready(self)

    def _refuse(self, type_name: str, text: str) -> None:
        _REFUSALS.log(logger, f"refused connection from {self.peer}: {text}")
        if self._on_refused is not None:
            self._on_refused(self.peer, text)
        self._send(KIND_ERROR, 0, [type_name, text, ""])
        self.close()

    def _protocol_error(self, text: str) -> None:
        _REFUSALS.log(logger, f"closing connection to {self.peer}: {text}")
        self.close()

    def _mark_closed(self, exc: Exception | None) -> None:
        if self.closed:
            return
        with self._writes.lock:  # a thread's call is registered before this, or sees it closed
            self.closed = True
            pending, self._pending = self._pending, {}
        self._writes.disable()
        error = ConnectionLost(f"connection to {self.peer} closed" + (f": {exc}" if exc else ""))
        if not self.handshake.done():
            self.handshake.set_exception(error)
            # Nobody may be awaiting the handshake (a server-side connection).
            self.handshake.exception()
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(error)
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                logger.exception("close callback failed")


def _frame(kind: int, req_id: int, body: Any) -> bytes:
    payload = codec.encode([kind, req_id, body])
    return len(payload).to_bytes(_HEADER, "big") + payload


class Reply:
    """The answer to one request (of a handler registered with ``answers_later``)."""

    __slots__ = ("_conn", "_req_id")

    def __init__(self, conn: Connection, req_id: int) -> None:
        self._conn = conn
        self._req_id = req_id

    def send_now(self, result: Any) -> bool:
        """Any thread: write the answer to the socket now, if nothing waits to go out
        before it on this connection; False if not (then ``send`` it from the loop)."""
        return self._conn._write_from_thread(KIND_REPLY, self._req_id, result)

    def send(self, result: Any) -> None:
        """Loop thread: send the answer; from now on, later answers on this connection
        may be written from other threads."""
        conn = self._conn
        if not conn.closed:
            conn._send(KIND_REPLY, self._req_id, result)
            conn.allow_writes_from_threads()


def send_now_together(answers: list[tuple[Reply, Any]]) -> list[tuple[Reply, Any]]:
    """Any thread: write ``answers`` (of ``answers_later`` handlers), those to one
    connection in one write, where nothing waits to go out before them; the ones not
    written, in order (``send`` them from the loop)."""
    by_conn: dict[Connection, list[tuple[Reply, Any]]] = {}
    for answer in answers:
        by_conn.setdefault(answer[0]._conn, []).append(answer)
    left: list[tuple[Reply, Any]] = []
    for conn, group in by_conn.items():
        if not conn._writes.enabled or not conn._write_bytes_from_thread(
            b"".join(_frame(KIND_REPLY, reply._req_id, result) for reply, result in group)
        ):
            left += group
    return left


_background_tasks: set[asyncio.Task[Any]] = set()


def _remote_error(body: Any) -> Exception:
    if not isinstance(body, list) or len(body) != 3:
        return RpcError(f"malformed error reply: {body!r}")
    type_name, text, tb = body
    if type_name == "AuthenticationError":
        return AuthenticationError(text)
    if type_name == "VersionMismatchError":
        return VersionMismatchError(text)
    if type_name == "PermissionDeniedError":
        return PermissionDeniedError(text)
    return RemoteError(str(type_name), str(text), str(tb))
