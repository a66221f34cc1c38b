"""Real RPC connections over Unix and loopback TCP sockets, in one process.

Each test runs its own event loop with ``asyncio.run`` and closes every server,
connection and raw socket it opened before returning. Nothing waits on a timer:
ordering on one connection (a notify is handled before a later call) and close
callbacks tell the tests when something has happened.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from manta._private.common.config import PROTOCOL_VERSION
from manta._private.common.ids import JobID
from manta._private.common.version import __version__
from manta._private.rpc import codec, endpoints, transport
from manta._private.rpc.auth import Grant, cluster_only
from manta._private.rpc.endpoints import RpcServer, connect
from manta._private.rpc.messages import Hello, JobFinished, KvDel, KvGet, KvPut, Subscribe, Welcome
from manta._private.rpc.transport import (
    KIND_ERROR,
    KIND_REPLY,
    KIND_REQUEST,
    TRY_AGAIN,
    Connection,
    ConnectionLost,
    Dispatcher,
    RemoteError,
)
from manta.exceptions import AuthenticationError, RpcError, VersionMismatchError

TOKEN = b"t" * 64
MAX_FRAME = 1 << 20
STEP = 5.0  # generous bound on any single step, so a bug fails instead of hanging


def run(main: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(main(), 30)

    asyncio.run(bounded())


class Server:
    """An RpcServer on a Unix socket or 127.0.0.1:0, with disconnect notifications."""

    def __init__(self, dispatcher: Dispatcher, *, max_frame: int = MAX_FRAME) -> None:
        self.connected: list[Connection] = []
        self.disconnected: asyncio.Queue[Connection] = asyncio.Queue()
        self.rpc = RpcServer(
            dispatcher,
            cluster_only(TOKEN),
            max_frame_bytes=max_frame,
            on_connect=self.connected.append,
            on_disconnect=self.disconnected.put_nowait,
        )
        self.address = ""
        self.unix_path = ""
        self.tcp_port = 0

    async def listen(self, where: str, tmp_path: Path) -> Server:
        if where == "unix":
            self.unix_path = str(tmp_path / "s.sock")
            await self.rpc.listen_unix(self.unix_path)
            self.address = "unix:" + self.unix_path
        else:
            self.tcp_port = await self.rpc.listen_tcp("127.0.0.1", 0)
            self.address = f"127.0.0.1:{self.tcp_port}"
        return self

    async def raw(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.unix_path:
            return await asyncio.open_unix_connection(self.unix_path)
        return await asyncio.open_connection("127.0.0.1", self.tcp_port)

    async def client(self, dispatcher: Dispatcher | None = None, **kwargs: Any) -> Connection:
        return await connect(
            self.address,
            kwargs.pop("token", TOKEN),
            dispatcher or Dispatcher(),
            kind=kwargs.pop("kind", "driver"),
            max_frame_bytes=MAX_FRAME,
            timeout=STEP,
            **kwargs,
        )

    async def close(self, *clients: Connection) -> None:
        """Close the clients, wait until the server saw each of its connections go, stop it."""
        open_on_server = len(self.rpc.connections)
        for conn in clients:
            conn.close()
        for _ in range(min(open_on_server, len(clients))):
            await asyncio.wait_for(self.disconnected.get(), STEP)
        self.rpc.close()
        assert not self.rpc.connections


def echo_dispatcher() -> tuple[Dispatcher, list[Any]]:
    seen: list[Any] = []
    dispatcher = Dispatcher()
    dispatcher.register(KvGet, lambda _conn, msg: [msg.namespace, msg.key])

    async def put(_conn: Connection, msg: KvPut) -> bool:
        await asyncio.sleep(0)  # an async handler that yields once
        return msg.overwrite

    dispatcher.register(KvPut, put)
    dispatcher.register(Subscribe, lambda _conn, msg: seen.append(msg))
    return dispatcher, seen


def frame(kind: int, req_id: int, body: Any) -> bytes:
    payload = codec.encode([kind, req_id, body])
    return len(payload).to_bytes(4, "big") + payload


async def read_frame(reader: asyncio.StreamReader) -> Any:
    size = int.from_bytes(await asyncio.wait_for(reader.readexactly(4), STEP), "big")
    return codec.decode(await asyncio.wait_for(reader.readexactly(size), STEP))


async def assert_closed_by_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    assert await asyncio.wait_for(reader.read(), STEP) == b""
    writer.close()
    await writer.wait_closed()


WHERE = pytest.mark.parametrize("where", ["unix", "tcp"])


def test_dispatcher_lookup() -> None:
    dispatcher = Dispatcher()

    def handler(_conn: Connection, _msg: Any) -> None:
        return None

    dispatcher.register(KvGet, handler)
    dispatcher.register(KvPut, handler, "submit")
    assert dispatcher.handler_for(KvGet) == (handler, "cluster")  # closed to users unless opened
    assert dispatcher.handler_for(KvPut) == (handler, "submit")
    assert dispatcher.handler_for(KvDel) is None


@WHERE
def test_request_reply(where: str, tmp_path: Path) -> None:
    async def main() -> None:
        dispatcher, _ = echo_dispatcher()
        server = await Server(dispatcher).listen(where, tmp_path)
        conn = await server.client(kind="driver", ident=b"me", info={"pid": 1})
        assert await conn.call(KvGet("ns", b"k")) == ["ns", b"k"]
        assert await conn.call(KvPut("ns", b"k", b"v", True)) is True
        # Many calls in flight on one connection each get their own reply.
        replies = await asyncio.gather(*(conn.call(KvGet(str(i), b"")) for i in range(50)))
        assert replies == [[str(i), b""] for i in range(50)]
        # The handshake told each side who the other is: the server decided the role.
        assert conn.peer_kind == "server" and conn.granted_role == "cluster"
        [server_side] = server.connected
        assert server_side.peer_kind == "driver" and server_side.peer_role == "cluster"
        assert server_side.peer_ident == b"me"
        assert server_side.peer_info == {"pid": 1}
        welcome = await server_side.handshake
        assert isinstance(welcome, Welcome) and welcome.role == "cluster"
        await server.close(conn)

    run(main)


@WHERE
def test_notifications_are_handled_in_order(where: str, tmp_path: Path) -> None:
    async def main() -> None:
        dispatcher, seen = echo_dispatcher()
        server = await Server(dispatcher).listen(where, tmp_path)
        conn = await server.client()
        for i in range(3):
            conn.notify(Subscribe("ch", bytes([i])))
        # A later call's reply proves the earlier notifications were handled.
        await conn.call(KvGet("", b""))
        assert seen == [Subscribe("ch", bytes([i])) for i in range(3)]
        await server.close(conn)

    run(main)


def test_server_calls_the_client(tmp_path: Path) -> None:
    async def main() -> None:
        server = await Server(Dispatcher()).listen("unix", tmp_path)
        client_dispatcher = Dispatcher()
        notified: list[Any] = []
        client_dispatcher.register(KvGet, lambda _conn, msg: b"client says " + msg.key)
        client_dispatcher.register(Subscribe, lambda _conn, msg: notified.append(msg))
        conn = await server.client(client_dispatcher)
        [server_side] = server.connected
        server_side.notify(Subscribe("a", b"b"))
        assert await server_side.call(KvGet("", b"hi")) == b"client says hi"
        assert notified == [Subscribe("a", b"b")]
        await server.close(conn)

    run(main)


@WHERE
def test_handler_exception_is_a_remote_error_and_the_server_keeps_serving(where: str, tmp_path: Path) -> None:
    async def main() -> None:
        dispatcher, _ = echo_dispatcher()

        def broken(_conn: Connection, msg: KvDel) -> None:
            raise KeyError(msg.key)

        async def broken_async(_conn: Connection, _msg: JobFinished) -> None:
            await asyncio.sleep(0)
            raise RuntimeError("async handler broke")

        dispatcher.register(KvDel, broken)
        dispatcher.register(JobFinished, broken_async)
        server = await Server(dispatcher).listen(where, tmp_path)
        conn = await server.client()
        with pytest.raises(RemoteError) as info:
            await conn.call(KvDel("ns", b"gone"))
        assert info.value.type_name == "KeyError"
        assert info.value.text == "b'gone'"
        assert "KeyError" in info.value.remote_traceback
        assert isinstance(info.value, RpcError)
        with pytest.raises(RemoteError, match="RuntimeError: async handler broke"):
            await conn.call(JobFinished(JobID.from_int(1)))
        # A failing notification is only logged on the other side.
        conn.notify(KvDel("ns", b"x"))
        assert await conn.call(KvGet("still", b"up")) == ["still", b"up"]
        await server.close(conn)

    run(main)


def test_a_handler_may_answer_with_a_future_resolved_later(tmp_path: Path) -> None:
    # The task path's handlers return a future that another thread resolves: its result,
    # its exception, or its cancellation is the reply, whenever it comes.
    async def main() -> None:
        loop = asyncio.get_running_loop()
        futures: dict[bytes, asyncio.Future[Any]] = {}

        def later(_conn: Connection, msg: KvGet) -> asyncio.Future[Any]:
            futures[msg.key] = loop.create_future()
            return futures[msg.key]

        dispatcher = Dispatcher()
        dispatcher.register(KvGet, later)
        server = await Server(dispatcher).listen("unix", tmp_path)
        conn = await server.client()
        calls = {key: conn.call(KvGet("", key)) for key in (b"ok", b"bad", b"gone")}
        while len(futures) < 3:
            await asyncio.sleep(0.001)
        assert not any(call.done() for call in calls.values())  # nothing answers early
        futures[b"bad"].set_exception(ValueError("no such key"))
        futures[b"gone"].cancel()
        futures[b"ok"].set_result("value")
        assert await calls[b"ok"] == "value"
        with pytest.raises(RemoteError, match="ValueError: no such key"):
            await calls[b"bad"]
        with pytest.raises(RemoteError, match="Cancelled"):
            await calls[b"gone"]
        await server.close(conn)

    run(main)


@pytest.mark.parametrize("where", ["unix", "tcp"])
def test_a_handler_answering_later_may_answer_from_another_thread_straight_to_the_socket(
    where: str, tmp_path: Path
) -> None:
    # A pushed task's result is written by the thread that ran it, without waking the
    # loop, once the connection has carried an answer; a partly written answer is finished
    # by the loop ahead of what the loop sends next; a closed connection takes none.
    async def main() -> None:
        replies: list[transport.Reply] = []
        dispatcher = Dispatcher()
        dispatcher.register(KvGet, lambda _conn, _msg, reply: replies.append(reply), answers_later=True)
        fds_before = len(os.listdir("/proc/self/fd"))
        server = await Server(dispatcher).listen(where, tmp_path)
        conn = await server.client()

        async def asked(n: int) -> list[asyncio.Future[Any]]:
            calls = [conn.call(KvGet("", str(i).encode())) for i in range(n)]
            while len(replies) < n:
                await asyncio.sleep(0.001)
            return calls

        (first,) = await asked(1)
        assert not await asyncio.to_thread(replies[0].send_now, "early")  # not before the loop answered once
        replies.pop().send("from the loop")
        assert await first == "from the loop"

        (second,) = await asked(1)
        assert await asyncio.to_thread(replies.pop().send_now, "from a thread")
        assert await second == "from a thread"

        big = os.urandom(MAX_FRAME // 2)  # more than a socket buffer takes at once
        third, fourth = await asked(2)
        assert await asyncio.to_thread(replies[0].send_now, big)
        replies[1].send("after it")
        assert await third == big and await fourth == "after it"
        replies.clear()

        (fifth,) = await asked(1)
        await server.close(conn)
        with pytest.raises(ConnectionLost):
            await fifth
        assert not await asyncio.to_thread(replies[0].send_now, "too late")
        replies[0].send("too late")  # nothing to send it on, and no error
        assert len(os.listdir("/proc/self/fd")) == fds_before  # the duplicate descriptor is closed too

    run(main)


@pytest.mark.parametrize("where", ["unix", "tcp"])
def test_answers_sent_together_go_in_one_write_each_to_its_connection(where: str, tmp_path: Path) -> None:
    # A worker holds back the answers of brief tasks and writes them together: those to
    # a connection that takes writes from threads arrive, each to its own call; those to
    # one that does not yet come back to go through the loop, in order.
    async def main() -> None:
        asked: list[tuple[bytes, transport.Reply]] = []
        dispatcher = Dispatcher()
        dispatcher.register(
            KvGet, lambda _conn, msg, reply: asked.append((msg.key, reply)), answers_later=True
        )
        server = await Server(dispatcher).listen(where, tmp_path)
        ready, fresh = await server.client(), await server.client()
        warm = ready.call(KvGet("", b"warm"))
        while len(asked) < 1:
            await asyncio.sleep(0.001)
        asked.pop()[1].send("from the loop")  # after it, this connection takes thread writes
        assert await warm == "from the loop"

        calls = {key: ready.call(KvGet("", key)) for key in (b"r0", b"r1", b"r2", b"r3")}
        calls |= {key: fresh.call(KvGet("", key)) for key in (b"f0", b"f1")}
        while len(asked) < len(calls):
            await asyncio.sleep(0.001)
        answers = [(reply, f"answer {key.decode()}") for key, reply in asked]
        left = await asyncio.to_thread(transport.send_now_together, answers)
        assert [answer for _reply, answer in left] == ["answer f0", "answer f1"]
        for reply, answer in left:
            reply.send(answer)
        for key, call in calls.items():
            assert await call == f"answer {key.decode()}"
        await server.close(ready)
        await server.close(fresh)

    run(main)


@pytest.mark.parametrize("where", ["unix", "tcp"])
def test_a_call_from_another_thread_is_answered_on_the_loop(where: str, tmp_path: Path) -> None:
    # The path a driver's thread takes to push a task to an idle worker itself.
    async def main() -> None:
        loop = asyncio.get_running_loop()
        dispatcher, _seen = echo_dispatcher()
        server = await Server(dispatcher).listen(where, tmp_path)
        conn = await server.client()
        answered: list[tuple[bool, Any]] = []

        def on_reply(fut: asyncio.Future[Any]) -> None:
            answered.append((asyncio.get_running_loop() is loop, fut.result()))

        def call(key: bytes) -> asyncio.Future[Any] | None:
            return conn.call_from_thread(KvGet("ns", key), on_reply)

        assert not conn.takes_thread_writes
        assert await asyncio.to_thread(call, b"before") is None  # not allowed yet: nothing sent
        conn.allow_writes_from_threads()
        futures = [await asyncio.to_thread(call, str(i).encode()) for i in range(3)]
        assert all(fut is not None for fut in futures)
        assert [await fut for fut in futures if fut is not None] == [["ns", b"0"], ["ns", b"1"], ["ns", b"2"]]
        await asyncio.sleep(0)  # done callbacks run in the loop's next turn
        assert answered == [(True, ["ns", str(i).encode()]) for i in range(3)]
        await server.close(conn)
        assert await asyncio.to_thread(call, b"after") is None and not conn.takes_thread_writes

    run(main)


def test_unknown_message_type(tmp_path: Path) -> None:
    async def main() -> None:
        server = await Server(Dispatcher()).listen("unix", tmp_path)
        conn = await server.client()
        with pytest.raises(RemoteError) as info:
            await conn.call(KvDel("ns", b"k"))
        assert info.value.type_name == "UnknownMessage"
        assert "no handler for KvDel" in str(info.value)
        # Plain values are not messages either.
        with pytest.raises(RemoteError, match="no handler for int"):
            await conn.call(5)
        await server.close(conn)

    run(main)


def test_a_request_with_fields_of_the_wrong_type_is_refused_and_the_connection_lives(tmp_path: Path) -> None:
    async def main() -> None:
        dispatcher = Dispatcher()
        seen: list[KvDel] = []
        dispatcher.register(KvDel, lambda _conn, msg: seen.append(msg))
        server = await Server(dispatcher).listen("unix", tmp_path)
        conn = await server.client()
        with pytest.raises(RemoteError, match=r"KvDel\.key") as info:
            await conn.call(KvDel("ns", "a str, not bytes"))  # type: ignore[arg-type]
        assert info.value.type_name == "ValueError"
        assert seen == []  # the handler never saw it
        await conn.call(KvDel("ns", b"k"))
        assert seen == [KvDel("ns", b"k")]
        await server.close(conn)

    run(main)


@WHERE
def test_wrong_token_is_refused_and_the_server_stays_up(where: str, tmp_path: Path) -> None:
    async def main() -> None:
        dispatcher, _ = echo_dispatcher()
        server = await Server(dispatcher).listen(where, tmp_path)
        with pytest.raises(AuthenticationError, match="token is missing or wrong"):
            await server.client(token=b"wrong")
        with pytest.raises(AuthenticationError):
            await server.client(token=b"")
        assert server.connected == []
        conn = await server.client()
        assert await conn.call(KvGet("a", b"b")) == ["a", b"b"]
        await server.close(conn)

    run(main)


def test_a_verifier_that_must_ask_decides_later_and_one_that_cannot_ask_says_try_again(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        dispatcher, _ = echo_dispatcher()
        asked: list[bytes] = []

        async def verify(token: bytes) -> Grant | None:
            asked.append(token)
            await asyncio.sleep(0.01)  # another process answers
            if token == b"unreachable":
                raise ConnectionLost("the gcs restarts")
            return Grant("submit", "someone") if token == b"user" else None

        rpc = RpcServer(dispatcher, verify, max_frame_bytes=MAX_FRAME)
        path = str(tmp_path / "s.sock")
        await rpc.listen_unix(path)

        async def client(token: bytes) -> Connection:
            return await connect(
                "unix:" + path, token, Dispatcher(), kind="client", max_frame_bytes=MAX_FRAME
            )

        conn = await client(b"user")
        assert conn.granted_role == "submit"
        with pytest.raises(AuthenticationError):
            await client(b"nobody")
        with pytest.raises(RemoteError) as info:
            await client(b"unreachable")
        assert info.value.type_name == TRY_AGAIN and "try again" in info.value.text
        assert asked == [b"user", b"nobody", b"unreachable"]
        conn.close()
        rpc.close()

    run(main)


def test_first_frame_must_be_a_handshake(tmp_path: Path) -> None:
    async def main() -> None:
        dispatcher, _ = echo_dispatcher()
        server = await Server(dispatcher).listen("unix", tmp_path)
        reader, writer = await server.raw()
        writer.write(frame(KIND_REQUEST, 1, KvGet("a", b"b")))
        kind, req_id, body = await read_frame(reader)
        assert (kind, req_id) == (KIND_ERROR, 0)
        assert body[0] == "AuthenticationError"
        assert "first frame must be a handshake" in body[1]
        await assert_closed_by_peer(reader, writer)
        server.rpc.close()

    run(main)


@WHERE
def test_protocol_version_mismatch_names_both_versions(where: str, tmp_path: Path) -> None:
    other = PROTOCOL_VERSION + 1

    async def main() -> None:
        dispatcher, _ = echo_dispatcher()
        server = await Server(dispatcher).listen(where, tmp_path)
        # By hand over a raw socket: what the server answers.
        reader, writer = await server.raw()
        writer.write(frame(KIND_REQUEST, 0, Hello(other, "9.9.9", TOKEN, "driver", b"", {})))
        kind, _, (type_name, text, _tb) = await read_frame(reader)
        assert kind == KIND_ERROR
        assert type_name == "VersionMismatchError"
        assert f"Manta {__version__} (protocol {PROTOCOL_VERSION})" in text
        assert f"Manta 9.9.9 (protocol {other})" in text
        await assert_closed_by_peer(reader, writer)
        # Through a client Connection: what the caller sees.
        loop = asyncio.get_running_loop()
        hello = Hello(other, "9.9.9", TOKEN, "driver", b"", {})

        def factory() -> Connection:
            return Connection(Dispatcher(), max_frame_bytes=MAX_FRAME, hello=hello)

        if where == "unix":
            _, conn = await loop.create_unix_connection(factory, server.unix_path)
        else:
            _, conn = await loop.create_connection(factory, "127.0.0.1", server.tcp_port)
        with pytest.raises(VersionMismatchError, match=f"protocol {other}"):
            await asyncio.wait_for(conn.handshake, STEP)
        assert conn.closed
        # A node daemon must run the very same Manta version, not only the same protocol.
        reader, writer = await server.raw()
        writer.write(frame(KIND_REQUEST, 0, Hello(PROTOCOL_VERSION, "0.0.1", TOKEN, "node", b"", {})))
        kind, _, (type_name, text, _tb) = await read_frame(reader)
        assert (kind, type_name) == (KIND_ERROR, "VersionMismatchError")
        assert f"Manta {__version__}" in text and "Manta 0.0.1" in text
        await assert_closed_by_peer(reader, writer)
        good = await server.client()
        assert await good.call(KvGet("", b"")) == ["", b""]
        await server.close(good)

    run(main)


@WHERE
def test_oversized_frame_before_handshake_closes_the_connection(where: str, tmp_path: Path) -> None:
    async def main() -> None:
        dispatcher, _ = echo_dispatcher()
        server = await Server(dispatcher).listen(where, tmp_path)
        reader, writer = await server.raw()
        # Only the header: the server must refuse without waiting for (or buffering) the body.
        writer.write((64 * 1024 + 1).to_bytes(4, "big"))
        await assert_closed_by_peer(reader, writer)
        conn = await server.client()
        assert await conn.call(KvGet("", b"")) == ["", b""]
        await server.close(conn)

    run(main)


def test_handshake_frame_at_the_limit_is_read(tmp_path: Path) -> None:
    async def main() -> None:
        dispatcher, _ = echo_dispatcher()
        server = await Server(dispatcher).listen("unix", tmp_path)
        reader, writer = await server.raw()
        hello = Hello(PROTOCOL_VERSION, __version__, TOKEN, "driver", b"", {"pad": "x" * 60_000})
        writer.write(frame(KIND_REQUEST, 0, hello))
        kind, _, body = await read_frame(reader)
        assert kind == KIND_REPLY and isinstance(body, Welcome)
        writer.close()
        await writer.wait_closed()
        await asyncio.wait_for(server.disconnected.get(), STEP)
        server.rpc.close()

    run(main)


def test_oversized_frame_after_handshake_closes_the_connection(tmp_path: Path) -> None:
    async def main() -> None:
        dispatcher, _ = echo_dispatcher()
        server = await Server(dispatcher, max_frame=4096).listen("unix", tmp_path)
        conn = await server.client()
        assert await conn.call(KvGet("", b"x" * 1000)) == ["", b"x" * 1000]
        with pytest.raises(ConnectionLost):
            await asyncio.wait_for(conn.call(KvGet("", b"x" * 5000)), STEP)
        await asyncio.wait_for(server.disconnected.get(), STEP)
        again = await server.client()
        assert await again.call(KvGet("", b"")) == ["", b""]
        await server.close(conn, again)

    run(main)


GARBAGE = [
    b"\x00\x00\x00\x05hello",  # a frame that is not msgpack
    b"\x00\x00\x00\x01\xc1",  # a byte msgpack never uses
    b"\x00\x00\x00\x03\x93\x01\x02",  # a two-element frame
    b"\x00\x00\x00\x01\x05",  # a frame that is a bare integer
    bytes(random.Random(7).getrandbits(8) for _ in range(300)),
]


@pytest.mark.parametrize("garbage", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_before_handshake_does_not_crash_the_server(garbage: bytes, tmp_path: Path) -> None:
    async def main() -> None:
        dispatcher, _ = echo_dispatcher()
        server = await Server(dispatcher).listen("tcp", tmp_path)
        reader, writer = await server.raw()
        writer.write(garbage)
        await writer.drain()
        writer.write_eof()
        # The server answers at most an error frame, then hangs up.
        rest = await asyncio.wait_for(reader.read(), STEP)
        if rest:
            size = int.from_bytes(rest[:4], "big")
            kind, _, body = codec.decode(rest[4 : 4 + size])
            assert kind == KIND_ERROR and body[0] == "AuthenticationError"
        writer.close()
        await writer.wait_closed()
        conn = await server.client()
        assert await conn.call(KvGet("", b"")) == ["", b""]
        await server.close(conn)

    run(main)


def test_garbage_after_handshake_closes_only_that_connection(tmp_path: Path) -> None:
    async def main() -> None:
        dispatcher, _ = echo_dispatcher()
        server = await Server(dispatcher).listen("unix", tmp_path)
        bystander = await server.client()
        reader, writer = await server.raw()
        writer.write(frame(KIND_REQUEST, 0, Hello(PROTOCOL_VERSION, __version__, TOKEN, "x", b"", {})))
        kind, _, _ = await read_frame(reader)
        assert kind == KIND_REPLY
        writer.write(b"\x00\x00\x00\x05hello")
        await assert_closed_by_peer(reader, writer)
        await asyncio.wait_for(server.disconnected.get(), STEP)
        # An unknown frame kind is a protocol error too.
        reader, writer = await server.raw()
        writer.write(frame(KIND_REQUEST, 0, Hello(PROTOCOL_VERSION, __version__, TOKEN, "x", b"", {})))
        await read_frame(reader)
        writer.write(frame(9, 1, KvGet("", b"")))
        await assert_closed_by_peer(reader, writer)
        await asyncio.wait_for(server.disconnected.get(), STEP)
        assert await bystander.call(KvGet("", b"")) == ["", b""]
        await server.close(bystander)

    run(main)


def test_pending_calls_fail_with_connection_lost_when_the_peer_closes(tmp_path: Path) -> None:
    async def main() -> None:
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        dispatcher = Dispatcher()

        async def stuck(_conn: Connection, _msg: KvGet) -> None:
            await gate

        dispatcher.register(KvGet, stuck)
        server = await Server(dispatcher).listen("unix", tmp_path)
        conn = await server.client()
        lost: list[Connection] = []
        conn.add_close_callback(lost.append)
        calls = [conn.call(KvGet("", b"")) for _ in range(3)]
        [server_side] = server.connected
        server_side.close()
        assert await asyncio.wait_for(server.disconnected.get(), STEP) is server_side
        for call in calls:
            with pytest.raises(ConnectionLost):
                await asyncio.wait_for(call, STEP)
        assert lost == [conn]
        assert conn.closed
        # Calls on a closed connection fail at once; notifies are dropped.
        with pytest.raises(ConnectionLost, match="is closed"):
            await conn.call(KvGet("", b""))
        conn.notify(Subscribe("", b""))
        # A close callback added after the close runs at once.
        conn.add_close_callback(lost.append)
        assert lost == [conn, conn]
        gate.set_result(None)
        server.rpc.close()

    run(main)


def test_closing_the_client_fails_its_own_pending_calls(tmp_path: Path) -> None:
    async def main() -> None:
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        dispatcher = Dispatcher()

        async def stuck(_conn: Connection, _msg: KvGet) -> None:
            await gate

        dispatcher.register(KvGet, stuck)
        server = await Server(dispatcher).listen("tcp", tmp_path)
        conn = await server.client()
        call = conn.call(KvGet("", b""))
        await server.close(conn)
        with pytest.raises(ConnectionLost):
            await call
        gate.set_result(None)

    run(main)


def test_a_closed_server_removes_its_socket_file_but_not_a_successors(tmp_path: Path) -> None:
    async def main() -> None:
        first = await Server(Dispatcher()).listen("unix", tmp_path)
        first.rpc.close()
        assert not os.path.exists(first.unix_path)
        # A successor at the same path (a restarted daemon) keeps its file when an older
        # server that listened there closes late.
        older = await Server(Dispatcher()).listen("unix", tmp_path)
        successor = await Server(Dispatcher()).listen("unix", tmp_path)
        older.rpc.close()
        assert os.path.exists(successor.unix_path)
        conn = await successor.client()
        await successor.close(conn)
        assert not os.path.exists(successor.unix_path)

    run(main)


def test_connect_to_nothing_is_connection_lost(tmp_path: Path) -> None:
    async def main() -> None:
        with pytest.raises(ConnectionLost, match="cannot connect to unix:"):
            await connect(
                "unix:" + str(tmp_path / "none.sock"),
                TOKEN,
                Dispatcher(),
                kind="driver",
                max_frame_bytes=MAX_FRAME,
            )
        with pytest.raises(ConnectionLost, match="cannot connect to"):
            await connect("no-port-here", TOKEN, Dispatcher(), kind="driver", max_frame_bytes=MAX_FRAME)

    run(main)


def test_server_close_disconnects_clients(tmp_path: Path) -> None:
    async def main() -> None:
        dispatcher, _ = echo_dispatcher()
        server = await Server(dispatcher).listen("unix", tmp_path)
        conn = await server.client()
        closed = asyncio.get_running_loop().create_future()
        conn.add_close_callback(closed.set_result)
        server.rpc.close()
        assert await asyncio.wait_for(closed, STEP) is conn
        assert server.rpc.connections == set()

    run(main)


def test_a_peer_that_never_authenticates_is_closed_after_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport, "HANDSHAKE_TIMEOUT_S", 0.05)

    async def main() -> None:
        dispatcher, _ = echo_dispatcher()
        server = await Server(dispatcher).listen("tcp", tmp_path)
        reader, writer = await server.raw()  # connects and says nothing
        await assert_closed_by_peer(reader, writer)
        conn = await server.client()  # others are served as usual
        assert await conn.call(KvGet("", b"")) == ["", b""]
        await server.close(conn)

    run(main)


def test_unauthenticated_connections_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(endpoints, "MAX_PENDING_HANDSHAKES", 2)

    async def main() -> None:
        dispatcher, _ = echo_dispatcher()
        server = await Server(dispatcher).listen("unix", tmp_path)
        silent = [await server.raw() for _ in range(2)]
        reader, writer = await server.raw()  # one too many: refused at once
        await assert_closed_by_peer(reader, writer)
        for _, w in silent:  # once they go, there is room again
            w.close()
            await w.wait_closed()
        await asyncio.sleep(0.05)
        conn = await server.client()
        assert await conn.call(KvGet("", b"")) == ["", b""]
        await server.close(conn)

    run(main)


def test_a_user_client_that_does_not_read_its_replies_is_cut_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client with a user token that asks and never reads would make the server buffer
    replies without end: past the limit it is disconnected, and others are served."""
    monkeypatch.setattr(transport, "MAX_UNREAD_BYTES", 4 << 20)
    reader_token = b"r" * 64

    def verify(token: bytes) -> Grant | None:
        return Grant("read", "viewer") if token == reader_token else cluster_only(TOKEN)(token)

    async def main() -> None:
        dispatcher = Dispatcher()
        dispatcher.register(KvGet, lambda _conn, msg: b"x" * (1 << 20), "read")
        server = RpcServer(dispatcher, verify, max_frame_bytes=MAX_FRAME * 4, tls=None)
        port = await server.listen_tcp("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            frame(KIND_REQUEST, 0, Hello(PROTOCOL_VERSION, __version__, reader_token, "cli", b"", {}))
        )
        assert (await read_frame(reader))[0] == KIND_REPLY
        for i in range(1, 200):  # ~200 MiB of replies asked for, none read
            writer.write(frame(KIND_REQUEST, i, KvGet("", b"")))
        await writer.drain()

        async def cut_off() -> None:
            while server.connections:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(cut_off(), STEP)
        writer.close()
        # The server still serves everyone else.
        conn = await connect(
            f"127.0.0.1:{port}", TOKEN, Dispatcher(), kind="driver", max_frame_bytes=MAX_FRAME * 4
        )
        assert len(await conn.call(KvGet("", b""))) == 1 << 20
        conn.close()
        server.close()

    run(main)
