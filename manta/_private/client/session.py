"""A remote driver's session: a driver process on the head that owns what the remote one
makes, so nothing on the cluster ever needs to reach the client's machine.

The client's ``init`` becomes this process's ``manta.init`` (joining the head's cluster);
each call the client sends (submit a task, create an actor, get, put, ...) runs here on
the core worker, as the same call of a local driver would. Calls run in the order sent
(one thread), except those that wait (``get``, ``wait``), which run beside it. Each is
run once: a call sent again after a lost connection gets the kept answer.

What the client holds is held here: every ref and actor handle sent to the client counts
as one reference in this process until the client says it dropped it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from manta._private.api import client_ops as ops
from manta._private.api import client_wire as wire
from manta._private.client.calls import Calls, Result
from manta._private.common import daemon
from manta._private.common.aio import new_event_loop
from manta._private.common.config import Config
from manta._private.common.session import read_token
from manta._private.rpc import messages as m
from manta._private.rpc import tls
from manta._private.rpc.auth import cluster_only
from manta._private.rpc.endpoints import RpcServer
from manta._private.rpc.transport import Connection, Dispatcher

logger = logging.getLogger("manta.client")

# Half-sent calls' buffers a session keeps at most (a client that vanished mid-put).
MAX_ASSEMBLING_BYTES = 4 << 30
# Answers a client has not acknowledged that its session keeps at most; past it, new calls
# are refused until acknowledgements come (a client acknowledges within 0.1 s; one that
# does not would make its session hold every answer).
MAX_KEPT_BYTES = 4 << 30


class Session:
    """The request loop of one remote driver's session (its asyncio side)."""

    def __init__(
        self, head_session_dir: str, config: Config, loop: asyncio.AbstractEventLoop, stop: Callable[[], None]
    ) -> None:
        self._head = head_session_dir
        self._config = config
        self._loop = loop
        self._stop = stop
        self._calls: Calls | None = None
        self._opened: m.ClientOpened | None = None
        self._replies: dict[int, Result] = {}
        self._running: dict[int, asyncio.Future[Result]] = {}
        self._waiting_for: dict[int, tuple[Connection, asyncio.Future[m.ClientResult]]] = {}
        self._acked = 0
        self._kept_bytes = 0  # of the answers in _replies
        self._ordered = ThreadPoolExecutor(1, "client-calls")
        self._waiting = ThreadPoolExecutor(32, "client-waits")
        self._parts = wire.Assembly(MAX_ASSEMBLING_BYTES)
        self.server: Connection | None = None

    def register(self, d: Dispatcher) -> None:
        d.register(m.ClientOpen, self._h_open)
        d.register(m.ClientCall, self._h_call)
        d.register(m.ClientPart, lambda conn, part: self._parts.add(part))
        d.register(m.ClientAck, lambda conn, msg: self._forget(msg.acked, msg.received))

    async def _h_open(self, conn: Connection, msg: m.ClientOpen) -> m.ClientOpened:
        if self._opened is None:
            self._calls, info = await self._loop.run_in_executor(
                self._ordered, Calls.start, self._head, self._config, msg
            )
            self._opened = m.ClientOpened("", "", False, info)
        return self._opened

    def _h_call(self, conn: Connection, msg: m.ClientCall) -> asyncio.Future[m.ClientResult]:
        self._forget(msg.acked, ())
        answer: asyncio.Future[m.ClientResult] = self._loop.create_future()
        kept = self._replies.get(msg.seq)
        running = self._running.get(msg.seq)
        if kept is not None or running is not None:
            self._parts.take(msg.seq)  # sent again: the first copy's parts are what runs
        if kept is not None:
            answer.set_result(self._send(conn, msg.seq, kept))
            return answer
        if running is None:
            if self._calls is None:
                raise RuntimeError("the session is not open yet: send ClientOpen first")
            if msg.seq <= self._acked:
                raise ValueError(f"call {msg.seq} was answered and acknowledged already")
            if self._kept_bytes > MAX_KEPT_BYTES:
                raise RuntimeError(
                    f"this client has {self._kept_bytes >> 20} MiB of answers it has not acknowledged: "
                    "its session takes no new calls until it does"
                )
            running = self._running[msg.seq] = self._loop.create_future()
            buffers: list[Any] = self._parts.take(msg.seq) if msg.parts else list(msg.buffers)
            self._ordered.submit(self._step, msg, buffers, running)
            running.add_done_callback(lambda done: self._settle(msg.seq, done))
        # Answered on the connection that asked last (an earlier one is dead).
        self._waiting_for[msg.seq] = (conn, answer)
        return answer

    def _settle(self, seq: int, done: asyncio.Future[Result]) -> None:
        waiter = self._waiting_for.pop(seq, None)
        if waiter is not None and not waiter[1].done():
            waiter[1].set_result(self._send(waiter[0], seq, done.result()))

    def _step(self, msg: m.ClientCall, buffers: list[Any], running: asyncio.Future[Result]) -> None:
        """On the calls thread, in the order sent: the call's arguments are loaded (and
        the refs in them counted) before any later release can free what they name."""
        assert self._calls is not None
        try:
            op = self._calls.prepare(msg, buffers)
        except BaseException as e:  # whatever happens, the call is answered (not left waiting)
            op = self._calls.error(e)
        if isinstance(op, Result) or not op.waits:
            result = op if isinstance(op, Result) else self._answer(op)
            self._loop.call_soon_threadsafe(self._done, msg.seq, running, result)
            if isinstance(op, ops.EndSession):
                # Stopped once the answer is on its way (the loop sends it first).
                self._loop.call_soon_threadsafe(self._loop.call_soon, self._stop)
            return

        def wait_and_settle() -> None:
            self._loop.call_soon_threadsafe(self._done, msg.seq, running, self._answer(op))

        self._waiting.submit(wait_and_settle)

    def _answer(self, op: ops.Operation) -> Result:
        assert self._calls is not None
        try:
            return self._calls.run(op)
        except BaseException as e:  # (run answers exceptions; this is for SystemExit and the like)
            return self._calls.error(e)

    def _done(self, seq: int, running: asyncio.Future[Result], result: Result) -> None:
        self._running.pop(seq, None)
        if seq > self._acked:
            self._replies[seq] = result
            self._kept_bytes += _size(result)
        running.set_result(result)

    def _send(self, conn: Connection, seq: int, result: Result) -> m.ClientResult:
        buffers, parts = wire.inline_or_parts(seq, result.buffers)
        for part in parts:
            conn.notify(part)
        return m.ClientResult(result.ok, result.payload, buffers, len(parts))

    def _forget(self, acked: int, received: Any) -> None:
        """Answers the client has: kept no longer."""
        for seq in received:
            self._drop_reply(seq)
        if acked > self._acked:
            for seq in [s for s in self._replies if s <= acked]:
                self._drop_reply(seq)
            self._acked = acked

    def _drop_reply(self, seq: int) -> None:
        result = self._replies.pop(seq, None)
        if result is not None:
            self._kept_bytes -= _size(result)

    def output(self, is_err: bool, text: str) -> None:
        """Print on the client's terminal (called from any thread)."""
        self._loop.call_soon_threadsafe(self._notify_output, is_err, text)

    def _notify_output(self, is_err: bool, text: str) -> None:
        if self.server is not None and not self.server.closed:
            self.server.notify(m.ClientOutput(is_err, text))

    def close(self) -> None:
        if self._calls is not None:
            self._calls.shutdown()
        self._ordered.shutdown(wait=False, cancel_futures=True)
        self._waiting.shutdown(wait=False, cancel_futures=True)


def _size(result: Result) -> int:
    return len(result.payload) + sum(b.nbytes for b in result.buffers)


class _Relay:
    """sys.stdout or sys.stderr of a session: what it prints goes to the client."""

    def __init__(self, session: Session, is_err: bool, original: Any) -> None:
        self._session = session
        self._is_err = is_err
        self._original = original

    def write(self, text: str) -> int:
        if text:  # not also to the session's log: the workers' own logs have it
            self._session.output(self._is_err, text)
        return len(text)

    def flush(self) -> None:
        self._original.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return int(self._original.fileno())


def main() -> None:
    parser = argparse.ArgumentParser(prog="manta-client-session")
    parser.add_argument("--head-session-dir", required=True)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--ready-fd", type=int, required=True, help="pipe to report readiness on")
    parser.add_argument("--lifeline-fd", type=int, help="pipe whose EOF means: stop")
    parser.add_argument("--config", default="{}", help="the head's Config, as JSON")
    args = parser.parse_args()
    config = Config(**json.loads(args.config))
    daemon.setup_logging(config.log_level)
    tls.use(config)  # the head's TLS settings: the session's driver reaches other nodes with them
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    stopping = loop.create_future()

    def stop() -> None:
        if not stopping.done():
            stopping.set_result(None)

    session = Session(args.head_session_dir, config, loop, stop)
    sys.stdout = _Relay(session, False, sys.stdout)  # type: ignore[assignment]
    sys.stderr = _Relay(session, True, sys.stderr)  # type: ignore[assignment]
    dispatcher = Dispatcher()
    session.register(dispatcher)

    def connected(conn: Connection) -> None:
        session.server = conn

    server = RpcServer(
        dispatcher,
        cluster_only(read_token(args.head_session_dir)),
        max_frame_bytes=config.max_frame_bytes,  # what the client port lets a client send
        on_connect=connected,
        on_disconnect=lambda conn: stop(),  # the client server went away: so do we
        tls=None,
    )
    loop.run_until_complete(server.listen_unix(args.socket))
    daemon.watch_lifeline(loop, args.lifeline_fd, stop)
    daemon.on_stop_signals(loop, stop)
    daemon.report_ready(args.ready_fd, {"pid": os.getpid()})
    loop.run_until_complete(stopping)
    server.close()
    session.close()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
