"""A remote driver's one connection to the head's client port, kept through drops.

Calls are numbered. When the connection drops, calls without an answer stay pending and
the channel dials again (for the session's grace period), takes its session up again
with the session's id and secret, and sends them again: the session runs each number
once, so nothing runs twice and no answer is lost. A session that is gone (the client was
away too long) fails every pending and later call with an error that says so.

Each call carries the reference holds and releases made before it (``take_ops``), taken
when the call is made, under one lock with queueing it: so a release never reaches the
session ahead of a call made earlier (one that submits the task whose result it releases).
Both sides ping each other; a side that hears nothing for three beats takes the link for
dead (a pulled cable sends no reset), so the session's grace period starts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from manta._private.api import client_ops
from manta._private.api import client_wire as wire
from manta._private.common.config import Config
from manta._private.core_worker.loop_thread import EventLoopThread
from manta._private.rpc import messages as m
from manta._private.rpc.endpoints import connect
from manta._private.rpc.transport import TRY_AGAIN, Connection, ConnectionLost, Dispatcher, RemoteError
from manta.exceptions import (
    AuthenticationError,
    PermissionDeniedError,
    RemoteSessionEndedError,
    VersionMismatchError,
)

logger = logging.getLogger("manta")

# Answers' buffers being put together at most (an answer is at most what the client asked for).
_MAX_ASSEMBLING_BYTES = 64 << 30
# Submissions sent without waiting that may be unanswered at once.
MAX_UNANSWERED_SUBMISSIONS = 10_000
# How often held-back reference releases and acknowledgements go out on an idle channel.
_FLUSH_S = 0.1

Answer = concurrent.futures.Future[m.ClientResult]


class ClientChannel:
    def __init__(
        self, address: str, token: bytes, config: Config, take_ops: Callable[[], list[list[Any]]]
    ) -> None:
        self._address = address
        self._token = token
        self._config = config
        self._take_ops = take_ops
        # The head's: how long it keeps the session, how often it expects to hear from us.
        self.grace_s = config.client_grace_s
        self.beat_s = config.client_heartbeat_s
        self.io = EventLoopThread("manta-client-io")
        self._parts = wire.Assembly(_MAX_ASSEMBLING_BYTES)
        self._dispatcher = Dispatcher()
        self._dispatcher.register(m.ClientPart, lambda c, part: self._parts.add(part))
        self._dispatcher.register(m.ClientOutput, lambda c, msg: _print(msg))
        self._dispatcher.register(m.Ping, lambda c, msg: None)  # the head's heartbeat
        self._conn: Connection | None = None
        self._session = ""
        self._secret = ""
        self._seq = 0
        self._acked = 0  # every call up to this one has its answer
        self._answered: set[int] = set()  # answered calls above _acked
        self._unreported: list[int] = []  # answered since the session was last told
        self._pending: dict[int, tuple[m.ClientCall, list[m.ClientPart], asyncio.Future[Any]]] = {}
        self._gone: Exception | None = None
        self._closing = False
        self._redialing: asyncio.Task[None] | None = None
        self._flusher: asyncio.TimerHandle | None = None
        self._pinged = 0.0
        self._order = threading.Lock()  # taking a call's operations and queueing it: one step
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
    def call(self, payload: bytes, buffers: list[memoryview]) -> m.ClientResult:
        """Send a call (a pickled operation) and wait for its answer (from any thread but
        the channel's)."""
        return self.call_future(payload, buffers).result()

    def call_future(self, payload: bytes, buffers: list[memoryview]) -> Answer:
        answer: Answer = concurrent.futures.Future()
        self._queue(payload, buffers, answer)
        return answer

    def send(self, payload: bytes, buffers: list[memoryview], returns: list[bytes]) -> None:
        """Send a submission nobody waits for: its refs (``returns``) carry what becomes of it."""
        self._window.acquire()  # at most so many unanswered: a fast loop waits for the head
        self._queue(payload, buffers, None, returns)

    def _queue(
        self,
        payload: bytes,
        buffers: list[memoryview],
        answer: Answer | None,
        returns: tuple[bytes, ...] | list[bytes] = (),
    ) -> None:
        with self._order:
            self.io.call_soon(self._start, payload, buffers, self._take_ops(), answer, list(returns))

    def _start(
        self,
        payload: bytes,
        buffers: list[memoryview],
        ops: list[list[Any]],
        answer: Answer | None,
        returns: list[bytes],
    ) -> None:
        if self._gone is not None:
            if answer is None:
                self._window.release()  # a submission: its refs' `get` will say why
            else:
                answer.set_exception(self._gone)
            return
        self._seq += 1
        seq = self._seq
        inline, parts = wire.inline_or_parts(seq, buffers)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[seq] = (
            m.ClientCall(seq, self._acked, payload, inline, len(parts), ops, returns),
            parts,
            fut,
        )
        if self._conn is not None and not self._conn.closed:
            self._send(self._conn, seq)
        fut.add_done_callback(lambda done: self._finish(seq, done, answer))

    def _finish(self, seq: int, done: asyncio.Future[Any], answer: Answer | None) -> None:
        error = done.exception()
        if answer is None:  # nobody waits: a failure shows where it matters (the refs' `get`)
            self._window.release()
            if error is not None:
                logger.debug("a call nobody waited for failed: %s", error)
        elif error is not None:
            answer.set_exception(error)
        else:
            result: m.ClientResult = done.result()
            if result.parts:
                result = m.ClientResult(result.ok, result.payload, self._parts.take(seq), 0)  # type: ignore[arg-type]
            answer.set_result(result)

    def _send(self, conn: Connection, seq: int) -> None:
        msg, parts, _ = self._pending[seq]
        for part in parts:
            conn.notify(part)
        conn.call(msg).add_done_callback(lambda answer: self._answer(seq, answer))

    def _answer(self, seq: int, answer: asyncio.Future[Any]) -> None:
        error = answer.exception()
        if isinstance(error, ConnectionLost):
            return  # sent again once the connection is back
        if isinstance(error, RemoteError) and error.type_name == RemoteSessionEndedError.__name__:
            self._give_up(RemoteSessionEndedError(error.text))
            return
        entry = self._pending.pop(seq, None)
        if entry is None or entry[2].done():
            return
        if error is not None:
            entry[2].set_exception(error)
        else:
            entry[2].set_result(answer.result())
        self._answered.add(seq)
        self._unreported.append(seq)
        while self._acked + 1 in self._answered:
            self._acked += 1
            self._answered.discard(self._acked)

    def _flush(self) -> None:
        """On an idle channel: send the releases held back, say which answers came, beat."""
        self._flusher = None
        conn = self._conn
        if self._gone is not None or self._closing:
            return
        if conn is not None and not conn.closed:
            self._heartbeat(conn)
            with self._order:  # behind every call made so far, as a call of its own
                ops = self._take_ops()
                if ops:  # answered into a future nobody reads (the loop must not wait for the window)
                    self.io.call_soon(self._start, _NOTHING, [], ops, concurrent.futures.Future(), [])
            if self._unreported:
                conn.notify(m.ClientAck(self._acked, self._unreported))
                self._unreported = []
        self._flusher = asyncio.get_running_loop().call_later(_FLUSH_S, self._flush)

    def _heartbeat(self, conn: Connection) -> None:
        now = time.monotonic()
        if now - conn.last_heard > 3 * self.beat_s:
            logger.warning(
                "the cluster at %s has been silent for %.0f s", self._address, now - conn.last_heard
            )
            conn.close(abort=True)
        elif now - self._pinged >= self.beat_s:
            self._pinged = now
            conn.notify(m.Ping())

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
            conn: Connection | None = None
            try:
                conn = await self._dial()
                opened = await conn.call(m.ClientOpen(self._session, self._secret, b"", ""))
            except (AuthenticationError, PermissionDeniedError, VersionMismatchError) as e:
                return self._give_up(e)
            except RemoteError as e:
                if conn is not None:
                    conn.close()  # a link the head would not take the session up on
                if e.type_name != TRY_AGAIN:  # the head does not know the session any more
                    return self._give_up(RemoteSessionEndedError(e.text))
                error: Exception = e
            except (ConnectionLost, OSError) as e:
                error = e
            else:
                self._parts.clear()
                self._conn = conn
                logger.warning(
                    "reconnected to the cluster at %s (session resumed: %s)", self._address, opened.resumed
                )
                for seq in sorted(self._pending):
                    self._send(conn, seq)
                return None
            if loop.time() > deadline:
                return self._give_up(
                    RemoteSessionEndedError(
                        f"the connection to the cluster at {self._address} was lost for more than "
                        f"{self.grace_s:g} s: its session, with the objects and actors it owned, "
                        f"has ended ({error})"
                    )
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        return None

    def _give_up(self, error: Exception) -> None:
        if self._gone is not None:
            return
        self._gone = error
        if not self._closing:  # (a shutdown is no error)
            logger.error("%s", error)
        pending, self._pending = self._pending, {}
        for _, _, fut in pending.values():
            if not fut.done():
                fut.set_exception(error)

    def close(self) -> None:
        """Stop; calls still waiting (other threads' `get`) fail instead of hanging."""

        async def closing() -> None:
            self._closing = True
            if self._flusher is not None:
                self._flusher.cancel()
            if self._redialing is not None:
                self._redialing.cancel()
            if self._conn is not None:
                self._conn.close()
            self._give_up(RemoteSessionEndedError("manta.shutdown() was called: this driver is disconnected"))

        try:
            self.io.run(closing(), timeout=5)
        finally:
            self.io.stop()


_NOTHING = wire.dumps(client_ops.Nothing(), lambda obj: None)[0]


def _print(msg: m.ClientOutput) -> None:
    stream = sys.stderr if msg.is_err else sys.stdout
    try:
        stream.write(msg.text)
        stream.flush()
    except (OSError, ValueError):
        pass
