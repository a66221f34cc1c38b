"""A remote driver's one connection to the head's client port, kept through drops.

Calls are numbered. When the connection drops, calls without an answer stay pending and
the channel dials again (for the session's grace period), takes its session up again
with the session's id and secret, and sends them again: the session runs each number
once, so nothing runs twice and no answer is lost. A session that is gone (the client was
away too long) fails every pending and later call with an error that says so.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sys
import threading
import time
from typing import Any

from manta._private.api import client_wire as wire
from manta._private.common.config import Config
from manta._private.core_worker.loop_thread import EventLoopThread
from manta._private.rpc import messages as m
from manta._private.rpc.transport import Connection, ConnectionLost, Dispatcher, RemoteError, connect
from manta.exceptions import AuthenticationError, PermissionDeniedError, VersionMismatchError

logger = logging.getLogger("manta")

# Answers' buffers being put together at most (an answer is at most what the client asked for).
_MAX_ASSEMBLING_BYTES = 64 << 30
# Submissions sent without waiting that may be unanswered at once.
MAX_UNANSWERED_SUBMISSIONS = 10_000
# How often held-back reference releases and acknowledgements go out on an idle channel.
_FLUSH_S = 0.1


class SessionGone(ConnectionError):
    """The remote driver's session on the head ended; nothing it owned is left."""


class ClientChannel:
    def __init__(self, address: str, token: bytes, config: Config, grace_s: float) -> None:
        self._address = address
        self._token = token
        self._config = config
        self.grace_s = grace_s
        self.io = EventLoopThread("manta-client-io")
        self._dispatcher = Dispatcher()
        self._dispatcher.register(m.ClientPart, lambda c, part: self._parts.add(part))
        self._dispatcher.register(m.ClientOutput, lambda c, msg: _print(msg))
        self._parts = wire.Assembly(_MAX_ASSEMBLING_BYTES)
        self._conn: Connection | None = None
        self._session = ""
        self._secret = ""
        self._seq = 0
        self._acked = 0  # every call up to this one has its answer
        self._sent_ack = 0
        self._answered: set[int] = set()  # answered calls above _acked
        self._pending: dict[int, tuple[m.ClientCall, list[m.ClientPart], asyncio.Future[Any]]] = {}
        self._gone: Exception | None = None
        self._closing = False
        self._redialing: asyncio.Task[None] | None = None
        self._flusher: asyncio.TimerHandle | None = None
        self._pinged = 0.0
        self.take_ops: Any = lambda: []  # the holds and releases to send with the next call
        self._window = threading.BoundedSemaphore(MAX_UNANSWERED_SUBMISSIONS)

    # -- opening -----------------------------------------------------------------------
    def open(self, options: bytes) -> bytes:
        """Connect and start a session; the facts it sends back (pickled)."""
        return self.io.run(self._open(options), timeout=120)

    async def _open(self, options: bytes) -> bytes:
        self._conn = await self._dial()
        opened = await self._conn.call(m.ClientOpen("", "", options, ""))
        self._session, self._secret = opened.session, opened.secret
        self._flusher = asyncio.get_running_loop().call_later(_FLUSH_S, self._flush)
        return bytes(opened.info)

    async def _dial(self) -> Connection:
        return await connect(
            self._address,
            self._token,
            self._dispatcher,
            kind="client",
            max_frame_bytes=self._config.max_frame_bytes,
            on_close=self._lost,
        )

    # -- calls -------------------------------------------------------------------------
    def send(self, method: str, payload: bytes, buffers: list[memoryview]) -> None:
        """Send a call nobody waits for (a submission: its refs carry what becomes of it)."""
        self._window.acquire()  # at most so many unanswered: a fast loop waits for the head
        self.io.call_soon(self._send_unawaited, method, payload, buffers)

    def _send_unawaited(self, method: str, payload: bytes, buffers: list[memoryview]) -> None:
        if self._gone is not None:  # the refs' `get` will say why
            self._window.release()
            return
        _, fut = self._enqueue(method, payload, buffers, self.take_ops())
        fut.add_done_callback(self._unawaited_done)

    def _unawaited_done(self, fut: asyncio.Future[Any]) -> None:
        self._window.release()
        _quietly(fut)

    def call(self, method: str, payload: bytes, buffers: list[memoryview]) -> m.ClientResult:
        """Send a call and wait for its answer (from any thread but the channel's)."""
        answer: concurrent.futures.Future[m.ClientResult] = concurrent.futures.Future()
        self.io.call_soon(self._start, method, payload, buffers, answer)
        return answer.result()

    def _start(
        self,
        method: str,
        payload: bytes,
        buffers: list[memoryview],
        answer: concurrent.futures.Future[m.ClientResult],
    ) -> None:
        if self._gone is not None:
            answer.set_exception(self._gone)
            return
        seq, fut = self._enqueue(method, payload, buffers, self.take_ops())

        def done(fut: asyncio.Future[Any]) -> None:
            error = fut.exception()
            if error is not None:
                answer.set_exception(error)
                return
            result: m.ClientResult = fut.result()
            if result.parts:
                result = m.ClientResult(result.ok, result.payload, self._parts.take(seq), 0)  # type: ignore[arg-type]
            answer.set_result(result)

        fut.add_done_callback(done)

    def _enqueue(
        self, method: str, payload: bytes, buffers: list[memoryview], ops: list[list[Any]]
    ) -> tuple[int, asyncio.Future[Any]]:
        self._seq += 1
        seq = self._seq
        inline, parts = wire.inline_or_parts(seq, buffers)
        msg = m.ClientCall(seq, self._acked, method, payload, inline, len(parts), ops)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[seq] = (msg, parts, fut)
        if self._conn is not None and not self._conn.closed:
            self._send(self._conn, seq)
        return seq, fut

    def _send(self, conn: Connection, seq: int) -> None:
        msg, parts, _ = self._pending[seq]
        for part in parts:
            conn.notify(part)
        conn.call(msg).add_done_callback(lambda answer: self._answer(seq, answer))

    def _answer(self, seq: int, answer: asyncio.Future[Any]) -> None:
        error = answer.exception()
        if isinstance(error, ConnectionLost):
            return  # sent again once the connection is back
        if isinstance(error, RemoteError) and error.type_name == SessionGone.__name__:
            self._give_up(SessionGone(error.text))
            return
        entry = self._pending.pop(seq, None)
        if entry is None or entry[2].done():
            return
        if error is not None:
            entry[2].set_exception(error)
        else:
            entry[2].set_result(answer.result())
        self._answered.add(seq)
        while self._acked + 1 in self._answered:
            self._acked += 1
            self._answered.discard(self._acked)

    def _heartbeat(self, conn: Connection) -> None:
        """Ping the head now and then; a head silent for three beats is taken for gone (no
        reset comes through a dead link), and the channel dials again."""
        now = time.monotonic()
        beat = self._config.client_heartbeat_s
        if now - conn.last_heard > 3 * beat:
            logger.warning(
                "the cluster at %s has been silent for %.0f s", self._address, now - conn.last_heard
            )
            conn.close(abort=True)
        elif now - self._pinged >= beat:
            self._pinged = now
            conn.call(m.Ping()).add_done_callback(_quietly)

    def _flush(self) -> None:
        """On an idle channel: send the releases held back, and say which answers came."""
        self._flusher = None
        conn = self._conn
        if self._gone is not None or self._closing:
            return
        if conn is not None and not conn.closed:
            self._heartbeat(conn)
            ops = self.take_ops()
            if ops:  # a call that does nothing but carry them, in order with the others
                _, fut = self._enqueue("ping", _NO_ARGS, [], ops)
                fut.add_done_callback(_quietly)
            elif self._acked > self._sent_ack:
                conn.notify(m.ClientAck(self._acked))
            self._sent_ack = self._acked
        self._flusher = asyncio.get_running_loop().call_later(_FLUSH_S, self._flush)

    # -- losing the connection and taking the session up again --------------------------
    def _lost(self, conn: Connection) -> None:
        if conn is not self._conn or self._closing or self._gone is not None or not self._session:
            return
        self._conn = None
        logger.warning(
            "the connection to the cluster at %s was lost; reconnecting (the session waits %g s)",
            self._address,
            self.grace_s,
        )
        self._redialing = asyncio.ensure_future(self._redial())

    async def _redial(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.grace_s
        delay = 0.1
        while not self._closing:
            try:
                conn = await self._dial()
                opened = await conn.call(m.ClientOpen(self._session, self._secret, b"", ""))
            except (AuthenticationError, PermissionDeniedError, VersionMismatchError) as e:
                return self._give_up(e)
            except RemoteError as e:  # the head does not know the session any more
                return self._give_up(SessionGone(e.text) if e.type_name == SessionGone.__name__ else e)
            except (ConnectionLost, OSError) as e:
                if loop.time() > deadline:
                    return self._give_up(
                        SessionGone(
                            f"the connection to the cluster at {self._address} was lost for more than "
                            f"{self.grace_s:g} s: its session, with the objects and actors it owned, "
                            f"has ended ({e})"
                        )
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            self._parts.clear()
            self._conn = conn
            logger.warning(
                "reconnected to the cluster at %s (session resumed: %s)", self._address, opened.resumed
            )
            for seq in sorted(self._pending):
                self._send(conn, seq)
            return None

    def _give_up(self, error: Exception) -> None:
        if self._gone is not None:
            return
        self._gone = error
        logger.error("%s", error)
        pending, self._pending = self._pending, {}
        for _, _, fut in pending.values():
            if not fut.done():
                fut.set_exception(error)

    def close(self) -> None:
        async def closing() -> None:
            self._closing = True
            if self._flusher is not None:
                self._flusher.cancel()
            if self._redialing is not None:
                self._redialing.cancel()
            if self._conn is not None:
                self._conn.close()

        try:
            self.io.run(closing(), timeout=5)
        finally:
            self.io.stop()


_NO_ARGS = wire.dumps(((), {}), lambda obj: None)[0]


def _quietly(fut: asyncio.Future[Any]) -> None:
    """An answer nobody waits for: a failure shows where it matters (the refs' ``get``)."""
    if not fut.cancelled() and fut.exception() is not None:
        logger.debug("a call nobody waited for failed: %s", fut.exception())


def _print(msg: m.ClientOutput) -> None:
    stream = sys.stderr if msg.is_err else sys.stdout
    try:
        stream.write(msg.text)
        stream.flush()
    except (OSError, ValueError):
        pass
