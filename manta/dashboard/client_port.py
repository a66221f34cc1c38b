"""The head's client port: where remote drivers (``init("manta://head:10001")``) connect.

Each remote driver gets a *session*: a driver process on the head (``manta._private.client``)
that owns its objects and actors, so nothing on the cluster connects back to the client.
This relays the client's messages to its session and the session's answers, output and
large buffers back, over the one connection the client made.

A connection that drops leaves the session waiting ``client_grace_s`` for the client to
come back (with the session's id and secret); after that the session ends, and with it
everything it owned (its non-detached actors, its objects), and that is logged.

Every connection is authenticated (the cluster token, or a user token the gcs knows) and
every message needs the ``submit`` role: ``read`` tokens cannot run code.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from manta._private.common.config import Config
from manta._private.common.session import LOGS_DIR, read_token, socket_path
from manta._private.rpc import messages as m
from manta._private.rpc.auth import Grant
from manta._private.rpc.endpoints import RpcServer, connect
from manta._private.rpc.transport import Connection, ConnectionLost, Dispatcher
from manta.exceptions import RemoteSessionEndedError

logger = logging.getLogger("manta.dashboard")

# Output a session keeps for a client that is away (then the oldest goes).
MAX_HELD_OUTPUT_BYTES = 1 << 20
_SESSION_START_S = 60.0
# What the relay lets wait for a slow reader before it stops reading the other side.
RELAY_BUFFER_BYTES = 16 << 20
# An authenticated connection that opens no session within this long is closed.
UNOPENED_S = 60.0
# Ended sessions remembered, to tell a client that comes back why its session is gone.
_ENDED_KEPT = 1000


@dataclass
class _Session:
    id: str
    secret: str
    who: str
    owner: str  # the name of the token that opened it: only that token takes it up again
    proc: asyncio.subprocess.Process
    conn: Connection | None = None
    client: Connection | None = None
    opened: m.ClientOpened | None = None
    grace: asyncio.TimerHandle | None = None
    held: deque[m.ClientOutput] = field(default_factory=deque)
    held_bytes: int = 0
    # The write end of the session's lifeline: it ends when this process does.
    lifeline: int = -1


class ClientPort:
    def __init__(
        self,
        session_dir: str,
        config: Config,
        grant_for: Callable[[bytes], Awaitable[Grant | None]],
        audit: Callable[..., Any],
    ) -> None:
        self._session_dir = session_dir
        self._config = config
        self._audit = audit
        self._sessions: dict[str, _Session] = {}
        self._of_client: dict[Connection, _Session] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self._watch: asyncio.Task[None] | None = None
        self._opening: set[Connection] = set()  # connections whose session is starting
        self._ended: dict[str, str] = {}  # session id -> why it ended (the latest ones)
        dispatcher = Dispatcher()
        dispatcher.register(m.ClientOpen, self._h_open, "submit")
        dispatcher.register(m.ClientCall, self._h_call, "submit")
        dispatcher.register(m.ClientPart, self._h_forward, "submit")
        dispatcher.register(m.ClientAck, self._h_forward, "submit")
        dispatcher.register(m.Ping, lambda conn, msg: None, "submit")  # the client's heartbeat
        self._server = RpcServer(
            dispatcher,
            grant_for,  # asks the gcs about user tokens; raising when it cannot is "try again"
            max_frame_bytes=config.max_frame_bytes,
            on_disconnect=self._client_left,
            ident=b"client-port",
        )

    async def serve(self, sock: socket.socket) -> int:
        self._watch = asyncio.get_running_loop().create_task(self._drop_silent_clients())
        return await self._server.listen_socket(sock)

    async def _drop_silent_clients(self) -> None:
        """Beat to every client; drop one that stopped sending (its beats included) though no
        reset came (a pulled cable, a sleeping laptop), so its session's grace period starts,
        and one that never opened a session."""
        beat = self._config.client_heartbeat_s
        while True:
            await asyncio.sleep(beat)
            now = time.monotonic()
            for conn in list(self._server.connections):
                session = self._of_client.get(conn)
                if session is not None and session.client is conn:
                    conn.notify(m.Ping())
                silent = now - conn.last_heard > 3 * beat and not conn.reading_paused
                unopened = session is None and conn not in self._opening and now - conn.made > UNOPENED_S
                if silent or unopened:
                    why = "silent" if silent else "no session opened"
                    logger.info(
                        "dropping the remote driver at %s: %s for %.0f s",
                        conn.peer,
                        why,
                        now - conn.last_heard,
                    )
                    conn.close(abort=True)

    # -- the client's side -------------------------------------------------------------
    async def _h_open(self, conn: Connection, msg: m.ClientOpen) -> m.ClientOpened:
        if conn in self._of_client or conn in self._opening:
            raise ValueError("this connection has its session already")
        if msg.session:
            return self._resume(conn, msg)
        if len(self._sessions) >= self._config.max_client_sessions:
            raise RuntimeError(
                f"the head runs {len(self._sessions)} remote drivers' sessions, its limit "
                "(max_client_sessions): try again when one has ended"
            )
        self._opening.add(conn)
        try:
            session = await self._start_session(conn)
            try:
                assert session.conn is not None
                opened = await session.conn.call(m.ClientOpen("", "", msg.options, conn.peer_role))
            except BaseException:
                self._end(session, "its driver could not start")
                raise
        finally:
            self._opening.discard(conn)
        session.opened = m.ClientOpened(session.id, session.secret, False, opened.info)
        if conn.closed:  # the client left while its session started: nobody will take it up
            self._end(session, "the client left while its session started")
            raise ConnectionLost("the client left")
        self._attach(session, conn)
        return session.opened

    def _resume(self, conn: Connection, msg: m.ClientOpen) -> m.ClientOpened:
        session = self._sessions.get(msg.session)
        # Only with its secret, and only by the token that opened it.
        if (
            session is None
            or session.opened is None
            or not hmac.compare_digest(session.secret, msg.secret)
            or session.owner != conn.peer_name
        ):
            why = self._ended.get(msg.session, "the head does not know it (did the head restart?)")
            raise RemoteSessionEndedError(
                f"the session {msg.session[:8]} of this remote driver has ended: {why}; its actors "
                "and objects are gone with it"
            )
        if session.client is not None:
            self._of_client.pop(session.client, None)
            session.client.close(abort=True)  # a connection the client gave up on
        self._attach(session, conn)
        logger.info("remote driver %s (%s) is back", session.id[:8], session.who)
        return m.ClientOpened(session.id, session.secret, True, session.opened.info)

    def _attach(self, session: _Session, conn: Connection) -> None:
        if session.grace is not None:
            session.grace.cancel()
            session.grace = None
        session.client = conn
        self._of_client[conn] = session
        # A slow reader on either side slows the other's sender: nothing piles up here.
        conn.set_send_buffer(RELAY_BUFFER_BYTES)
        conn.on_pace(lambda slow: _pace(session.conn, slow))
        _pace(session.conn, False)  # a connection that died slow left the session unread
        while session.held:
            conn.notify(session.held.popleft())
        session.held_bytes = 0

    async def _h_call(self, conn: Connection, msg: m.ClientCall) -> Any:
        session = self._session_of(conn)
        assert session.conn is not None
        try:
            return await session.conn.call(msg)
        except ConnectionLost:
            raise RemoteSessionEndedError(
                "the session of this remote driver ended (its process exited; see the head's "
                f"client-session-{session.id[:12]}.log): its actors and objects are gone with it"
            ) from None

    def _h_forward(self, conn: Connection, msg: Any) -> None:
        session = self._session_of(conn)
        if session.conn is not None:
            session.conn.notify(msg)

    def _session_of(self, conn: Connection) -> _Session:
        session = self._of_client.get(conn)
        if session is None:
            raise ValueError("open a session first (ClientOpen)")
        return session

    def _client_left(self, conn: Connection) -> None:
        session = self._of_client.pop(conn, None)
        if session is None or session.client is not conn:
            return
        session.client = None
        _pace(session.conn, False)  # its answers are kept for the client's return, not held up
        grace = self._config.client_grace_s
        logger.info(
            "remote driver %s (%s) disconnected: its session waits %g s for it",
            session.id[:8],
            session.who,
            grace,
        )
        loop = asyncio.get_running_loop()
        session.grace = loop.call_later(
            grace, self._end, session, f"the client did not come back within {grace:g} s"
        )

    # -- the session's side ------------------------------------------------------------
    async def _start_session(self, conn: Connection) -> _Session:
        session_id = secrets.token_hex(16)
        path = socket_path(self._session_dir, f"c-{session_id[:16]}")
        proc, ready_r, life_w = await self._spawn(session_id, path)
        who = f"{conn.peer_name} ({conn.peer_role}) from {conn.peer}"
        session = _Session(session_id, secrets.token_hex(32), who, conn.peer_name, proc, lifeline=life_w)
        self._sessions[session_id] = session
        try:
            await asyncio.wait_for(_read_ready(ready_r), _SESSION_START_S)
            session.conn = await connect(
                "unix:" + path,
                read_token(self._session_dir),
                self._session_dispatcher(session),
                kind="dashboard",
                max_frame_bytes=self._config.max_frame_bytes,
                on_close=lambda _c: self._end(session, "its process exited"),
            )
            session.conn.set_send_buffer(RELAY_BUFFER_BYTES)
            session.conn.on_pace(lambda slow: _pace(session.client, slow))
        except BaseException as e:
            self._end(session, f"it did not start: {e}")
            raise RuntimeError(f"the session for this remote driver did not start: {e}") from None
        logger.info("remote driver %s: %s, session pid %d", session_id[:8], who, proc.pid)
        self._audit(
            "client_session_start",
            by=conn.peer_name,
            role=conn.peer_role,
            peer=conn.peer,
            session=session_id[:8],
        )
        return session

    async def _spawn(self, session_id: str, path: str) -> tuple[asyncio.subprocess.Process, int, int]:
        """The session's process; the read end of its ready pipe, the write end of its lifeline."""
        log_path = os.path.join(self._session_dir, LOGS_DIR, f"client-session-{session_id[:12]}.log")
        ready_r, ready_w = os.pipe()
        life_r, life_w = os.pipe()
        env = {k: v for k, v in os.environ.items() if k != "MANTA_AUTH_TOKEN"}
        try:
            with open(log_path, "ab") as log:
                proc = await asyncio.create_subprocess_exec(
                    *(sys.executable, "-m", "manta._private.client", "--head-session-dir", self._session_dir),
                    *("--socket", path, "--ready-fd", str(ready_w), "--lifeline-fd", str(life_r)),
                    *("--config", json.dumps(self._config.replace(auth_token="").to_dict())),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    pass_fds=(ready_w, life_r),
                    env=env,
                    start_new_session=True,
                )
        except BaseException:
            for fd in (ready_r, life_w):
                os.close(fd)
            raise
        finally:
            os.close(ready_w)
            os.close(life_r)
        return proc, ready_r, life_w

    def _session_dispatcher(self, session: _Session) -> Dispatcher:
        d = Dispatcher()

        def part(conn: Connection, msg: m.ClientPart) -> None:
            if session.client is not None:
                session.client.notify(msg)

        def output(conn: Connection, msg: m.ClientOutput) -> None:
            if session.client is not None:
                session.client.notify(msg)
                return
            session.held.append(msg)
            session.held_bytes += len(msg.text)
            while session.held_bytes > MAX_HELD_OUTPUT_BYTES and session.held:
                session.held_bytes -= len(session.held.popleft().text)

        d.register(m.ClientPart, part)
        d.register(m.ClientOutput, output)
        return d

    def _end(self, session: _Session, why: str) -> None:
        if self._sessions.pop(session.id, None) is None:
            return
        self._ended[session.id] = why
        while len(self._ended) > _ENDED_KEPT:
            self._ended.pop(next(iter(self._ended)))
        if session.grace is not None:
            session.grace.cancel()
        logger.info("remote driver %s (%s): session ends, %s", session.id[:8], session.who, why)
        self._audit("client_session_end", session=session.id[:8], reason=why)
        if session.client is not None:
            self._of_client.pop(session.client, None)
            session.client.close(abort=True)
        if session.conn is not None:
            session.conn.close()
        task = asyncio.get_running_loop().create_task(_stop(session.proc, session.lifeline))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        self._server.close()
        for session in list(self._sessions.values()):
            self._end(session, "the head is stopping")
        if self._stopping:
            await asyncio.wait(self._stopping)


def _pace(reader: Connection | None, slow: bool) -> None:
    """Stop (or go on) reading from ``reader``: what it sends cannot be passed on as fast."""
    if reader is not None:
        reader.pause_reading(slow)


async def _read_ready(fd: int) -> None:
    """Until the session process says it is ready; it closes ``fd`` whatever happens (a
    process killed for starting too slowly ends the read with EOF)."""

    def read_and_close() -> bytes:
        try:
            return os.read(fd, 64)
        finally:
            os.close(fd)

    if not await asyncio.get_running_loop().run_in_executor(None, read_and_close):
        raise RuntimeError("its process exited while starting (see its log, client-session-*.log)")


async def _stop(proc: asyncio.subprocess.Process, lifeline: int) -> None:
    """SIGTERM (the session's driver shuts down: its job ends, its actors with it), then
    SIGKILL if it lingers."""
    if lifeline >= 0:
        os.close(lifeline)
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), 10.0)
    except asyncio.TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
