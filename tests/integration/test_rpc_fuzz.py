"""Random and malformed input against each RPC service of a live cluster (the gcs, a node
daemon, a worker), before and after authenticating, with hypothesis: random bytes,
truncated frames, huge and negative lengths, unknown frame kinds and message tags,
messages with fields of the wrong types or counts, and well-typed random messages sent
with a `read` token. Every reply is an error (or the connection is closed), no daemon
dies, and no daemon logs an unexpected error: bad input is refused, never crashes."""

from __future__ import annotations

import asyncio
import glob
import json
import os
import socket
import struct
from pathlib import Path
from typing import Any

import msgpack
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import manta
from manta._private.common.aio import new_event_loop
from manta._private.common.config import PROTOCOL_VERSION
from manta._private.common.session import ADDRESS_FILE
from manta._private.common.version import __version__
from manta._private.rpc import codec
from manta._private.rpc.endpoints import connect
from manta._private.rpc.transport import Dispatcher, RemoteError
from tests.http_api import request

pytestmark = pytest.mark.timeout(600)

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
MARK = msgpack.ExtType(1, b"")  # what opens an encoded message (codec._EXT_MESSAGE)
KNOWN_TAGS = sorted(codec._by_tag)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    context = manta.init(num_cpus=1, include_dashboard=True)
    try:
        session = context["session_dir"]
        token = Path(session, "token").read_text().strip().encode()

        @manta.remote
        class Target:
            def pid(self) -> int:
                return os.getpid()

        target = Target.remote()
        worker_pid = manta.get(target.pid.remote())
        head = {"url": "http://" + context.dashboard_url, "token": token.decode()}
        status, issued = request(head, "POST", "/api/tokens", {"role": "read", "name": "fuzz-reader"})
        assert status == 200, issued
        with open(os.path.join(session, ADDRESS_FILE)) as f:
            address = json.load(f)
        services = {
            "gcs": address["gcs_address"],
            "gcs-unix": "unix:" + address["gcs_unix"],
            "node": f"{address['host']}:{address['node_port']}",
            "worker": _tcp_listener(worker_pid),
        }
        yield {
            "session": session,
            "token": token,
            "reader": issued["token"].encode(),
            "services": services,
            "pids": [*address["pids"].values(), worker_pid],
            "log_sizes": _log_sizes(session),
            "actor": target,
        }
    finally:
        manta.shutdown()
        os.chdir(here)


def _tcp_listener(pid: int) -> str:
    """The TCP port a worker listens on (its RPC server; workers listen on nothing else)."""
    [port] = [
        c.laddr.port
        for c in psutil.Process(pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]
    return f"127.0.0.1:{port}"


def _log_sizes(session: str) -> dict[str, int]:
    return {p: os.path.getsize(p) for p in glob.glob(os.path.join(session, "logs", "*"))}


class Raw:
    """A client that speaks bytes, not Manta: it can send anything."""

    def __init__(self, address: str) -> None:
        if address.startswith("unix:"):
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(address[5:])
        else:
            host, _, port = address.rpartition(":")
            self.sock = socket.create_connection((host, int(port)))
        self.sock.settimeout(5)

    def send_bytes(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def send(self, frame: Any) -> bool:
        payload = msgpack.packb(frame, use_bin_type=True)
        return self.send_bytes(len(payload).to_bytes(4, "big") + payload)

    def recv(self) -> Any:
        """The next frame, or None when the server closed the connection."""
        try:
            header = self._exactly(4)
            if header is None:
                return None
            body = self._exactly(int.from_bytes(header, "big"))
        except (TimeoutError, OSError):
            return None
        return None if body is None else msgpack.unpackb(body, raw=False, strict_map_key=False)

    def _exactly(self, n: int) -> bytes | None:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def close(self) -> None:
        self.sock.close()


def hello(token: bytes, kind: str = "cli") -> list[Any]:
    return [0, 0, [MARK, 1, PROTOCOL_VERSION, __version__, token, kind, b"", {}]]


def authenticated(address: str, token: bytes) -> Raw:
    raw = Raw(address)
    assert raw.send(hello(token))
    reply = raw.recv()
    assert reply is not None and reply[0] == 1, reply  # a Welcome
    return raw


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def wrong_messages(draw: Any) -> list[Any]:
    """A message of a known tag with one field too many (never a valid call), or of an
    unknown tag."""
    if draw(st.booleans()):
        tag = draw(st.sampled_from(KNOWN_TAGS))
        count = len(codec.fields_of(codec._by_tag[tag][0])) + 1
    else:
        tag = draw(st.integers(min_value=-5, max_value=10_000).filter(lambda t: t not in codec._by_tag))
        count = draw(st.integers(0, 5))
    return [MARK, tag, *draw(st.lists(values, min_size=count, max_size=count))]


@st.composite
def typed_messages(draw: Any) -> list[Any]:
    """A message of a known tag with the right number of fields, of random types."""
    tag = draw(st.sampled_from(KNOWN_TAGS))
    count = len(codec.fields_of(codec._by_tag[tag][0]))
    return [MARK, tag, *draw(st.lists(values, min_size=count, max_size=count))]


garbage = st.one_of(
    st.binary(max_size=2000),  # anything at all
    st.builds(lambda n, body: struct.pack(">I", n) + body, st.integers(0, 2**32 - 1), st.binary(max_size=64)),
    st.builds(lambda n: struct.pack(">i", n), st.integers(-(2**31), -1)),  # "negative" lengths
)

SERVICES = ["gcs", "gcs-unix", "node", "worker"]


@pytest.mark.parametrize("service", SERVICES)
def test_garbage_before_the_handshake_is_refused(cluster, service: str) -> None:
    address = cluster["services"][service]

    @FUZZ
    @given(data=garbage)
    def check(data: bytes) -> None:
        raw = Raw(address)
        try:
            raw.send_bytes(data)
            raw.sock.shutdown(socket.SHUT_WR)
            reply = raw.recv()
            # Nothing but an error frame, then the close.
            assert reply is None or (reply[0] == 2 and reply[2][0] == "AuthenticationError"), reply
        finally:
            raw.close()

    check()
    assert_alive(cluster, service)


@pytest.mark.parametrize("service", SERVICES)
def test_malformed_frames_after_the_handshake_get_errors(cluster, service: str) -> None:
    address = cluster["services"][service]
    state: dict[str, Raw] = {}

    def conn() -> Raw:
        if "raw" not in state:
            state["raw"] = authenticated(address, cluster["token"])
        return state["raw"]

    @FUZZ
    @given(
        kind=st.sampled_from([0, 0, 0, 3, 1, 2, 7, -1, 2**40]),
        req_id=st.integers(min_value=-(2**63), max_value=2**64 - 1),
        body=wrong_messages() | values,
    )
    def check(kind: int, req_id: int, body: Any) -> None:
        raw = conn()
        if not raw.send([kind, req_id, body]):
            state.pop("raw").close()
            return
        if kind != 0:  # notifications, stray replies and unknown kinds get no answer
            return
        reply = raw.recv()
        if reply is None:  # the server hung up on a protocol error: fine, once
            state.pop("raw").close()
            return
        assert reply[0] == 2 and reply[1] == req_id, reply  # an error, for this request
        errors.append(reply[2][0])

    errors: list[str] = []
    check()
    if "raw" in state:
        state["raw"].close()
    # How many of hypothesis's frames were requests depends on its version: these are (past
    # the handshake's tags, one field too many), and each is answered with an error on the
    # same connection (malformed, or not this service's).
    tags = [tag for tag in KNOWN_TAGS if tag >= 10][:10]
    raw = authenticated(address, cluster["token"])
    try:
        for request_id, tag in enumerate(tags):
            fields = len(codec.fields_of(codec._by_tag[tag][0])) + 1
            assert raw.send([0, request_id, [MARK, tag, *([None] * fields)]])
            reply = raw.recv()
            assert reply is not None and reply[0] == 2 and reply[1] == request_id, reply
            errors.append(reply[2][0])
    finally:
        raw.close()
    assert len(errors) >= 10, errors
    assert_alive(cluster, service)


def test_typed_random_messages_with_a_read_token_get_errors_or_read_only_answers(cluster) -> None:
    """Every message type, well-typed but random, from a `read` token at the gcs: the
    cluster-only ones are refused by role; the read-only ones answer or refuse the values."""
    state: dict[str, Raw] = {}

    @FUZZ
    @given(body=typed_messages(), req_id=st.integers(0, 2**31))
    def check(body: list[Any], req_id: int) -> None:
        if "raw" not in state:
            state["raw"] = authenticated(cluster["services"]["gcs"], cluster["reader"])
        raw = state["raw"]
        assert raw.send([0, req_id, body])
        reply = raw.recv()
        assert reply is not None and reply[1] == req_id, reply
        if reply[0] == 2:
            assert reply[2][0] in ("PermissionDeniedError", "ValueError", "KeyError", "UnknownMessage"), reply
            outcomes.append(reply[2][0])
        else:  # answered: only a request a reader may make
            from manta._private.gcs.access_shell import USER_REQUESTS

            cls = codec._by_tag[body[1]][0]
            assert USER_REQUESTS.get(cls) == "read", cls
            outcomes.append("answered")

    outcomes: list[str] = []
    check()
    assert "PermissionDeniedError" in outcomes and len(outcomes) >= 50, outcomes
    state["raw"].close()
    assert_alive(cluster, "gcs")


def assert_alive(cluster: dict[str, Any], service: str) -> None:
    for pid in cluster["pids"]:
        assert psutil.pid_exists(pid), f"pid {pid} died during the fuzzing of {service}"
    loop = new_event_loop()

    async def ping() -> None:
        conn = await connect(
            cluster["services"][service], cluster["token"], Dispatcher(), kind="cli", max_frame_bytes=1 << 20
        )
        try:
            from manta._private.rpc.messages import Ping

            await asyncio.wait_for(conn.call(Ping()), 10)
        except RemoteError as e:
            assert e.type_name == "UnknownMessage"  # nodes and workers have no Ping: they answered
        finally:
            conn.close()

    try:
        loop.run_until_complete(ping())
    finally:
        loop.close()
    # The actor still answers: the worker survived and its node still serves it.
    assert manta.get(cluster["actor"].pid.remote(), timeout=30) > 0


def test_no_daemon_logged_an_unexpected_error(cluster) -> None:
    """Runs last in the module: what the fuzzing made the daemons log is refusals, never a
    traceback or an ERROR line."""
    before = cluster["log_sizes"]
    for path in glob.glob(os.path.join(cluster["session"], "logs", "*")):
        with open(path, errors="replace") as f:
            f.seek(before.get(path, 0))
            text = f.read()
        assert "Traceback" not in text and " ERROR " not in text, f"{path}:\n{text[-3000:]}"
