"""TLS on real loopback sockets: mutual TLS works for RPC frames of every size and for
object streams; a plaintext client of a TLS server, a TLS client of a plaintext server,
a certificate from another CA and a certificate for another address are each refused,
with a clear error on the client's side and a log line on the server's."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from pathlib import Path

import pytest

from manta._private.common.config import Config
from manta._private.rpc import certs, tls
from manta._private.rpc.auth import cluster_only
from manta._private.rpc.endpoints import RpcServer, connect
from manta._private.rpc.messages import KvGet, KvPut
from manta._private.rpc.transport import Dispatcher
from manta.exceptions import AuthenticationError

TOKEN = b"t" * 64
STEP = 10.0


def make_tls(
    ca_dir: Path, node_dir: Path, ips: list[str] | None = None, dns: list[str] | None = None
) -> tls.Tls:
    ca = Path(ca_dir, certs.CA_CERT)
    if not ca.exists():
        certs.create_ca(str(ca_dir))
    node = certs.create_node(
        str(ca),
        str(ca_dir / certs.CA_KEY),
        ips if ips is not None else ["127.0.0.1"],
        dns or [],
        str(node_dir),
    )
    made = tls.load(Config(tls_ca=str(ca), tls_cert=node.cert, tls_key=node.key))
    assert made is not None
    return made


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tls.Tls]:
    base = tmp_path_factory.mktemp("pki")
    return {
        "server": make_tls(base / "ca", base / "server"),
        "client": make_tls(base / "ca", base / "client"),
        "stranger": make_tls(base / "other-ca", base / "stranger"),
        "wrong-name": make_tls(base / "ca", base / "elsewhere", ips=["10.9.9.9"], dns=["elsewhere.example"]),
    }


def echo() -> Dispatcher:
    d = Dispatcher()
    d.register(KvGet, lambda _c, msg: [msg.namespace, msg.key])
    d.register(KvPut, lambda _c, msg: len(msg.value))
    return d


async def serve(server_tls: tls.Tls | None, refusals: list[str] | None = None) -> tuple[RpcServer, str]:
    def refused(_peer: str, why: str) -> None:
        if refusals is not None:
            refusals.append(why)

    server = RpcServer(
        echo(), cluster_only(TOKEN), max_frame_bytes=1 << 30, tls=server_tls, on_refused=refused
    )
    port = await server.listen_tcp("127.0.0.1", 0)
    return server, f"127.0.0.1:{port}"


async def client(address: str, client_tls: tls.Tls | None):
    return await connect(
        address, TOKEN, Dispatcher(), kind="driver", max_frame_bytes=1 << 30, timeout=STEP, tls=client_tls
    )


def test_key_files_are_private(tmp_path: Path) -> None:
    ca = certs.create_ca(str(tmp_path))
    node = certs.create_node(ca.cert, ca.key, ["127.0.0.1"], ["localhost"], str(tmp_path / "n"))
    for key in (ca.key, node.key):
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    with pytest.raises(certs.CertError, match="bad --ip"):
        certs.create_node(ca.cert, ca.key, ["not-an-ip"], [], str(tmp_path / "m"))
    with pytest.raises(certs.CertError, match="at least one --ip or --dns"):
        certs.create_node(ca.cert, ca.key, [], [], str(tmp_path / "m"))
    with pytest.raises(certs.CertError, match="cannot load the CA"):
        certs.create_node(node.cert, "/nonexistent", ["127.0.0.1"], [], str(tmp_path / "m"))


def test_incomplete_or_unreadable_settings_are_named(tmp_path: Path) -> None:
    assert tls.load(Config()) is None
    with pytest.raises(ValueError, match="MANTA_TLS_KEY not set"):
        tls.load(Config(tls_ca="a", tls_cert="b"))
    with pytest.raises(ValueError, match=r"MANTA_TLS_CA names '/nope/ca\.crt', which cannot be read"):
        tls.load(Config(tls_ca="/nope/ca.crt", tls_cert="/nope/c", tls_key="/nope/k"))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(ValueError, match="cannot load the TLS files"):
        tls.load(Config(tls_ca=str(junk), tls_cert=str(junk), tls_key=str(junk)))


def test_mutual_tls_carries_frames_of_every_size(pki) -> None:
    async def main() -> None:
        server, address = await serve(pki["server"])
        conn = await client(address, pki["client"])
        assert await conn.call(KvGet("ns", b"k")) == ["ns", b"k"]
        for size in (0, 1, 16 * 1024 - 1, 16 * 1024 + 1, 3 * 1024 * 1024 + 7):
            assert await conn.call(KvPut("ns", b"k", os.urandom(size), True)) == size
        replies = await asyncio.gather(*(conn.call(KvGet(str(i), b"")) for i in range(200)))
        assert replies == [[str(i), b""] for i in range(200)]
        conn.close()
        server.close()

    asyncio.run(asyncio.wait_for(main(), 60))


@pytest.mark.parametrize(
    "server_side,client_side,words",
    [
        ("server", None, "this server requires TLS"),
        (None, "client", "closed the connection during the TLS handshake"),
        ("server", "stranger", "TLS handshake"),
        ("wrong-name", "client", "TLS handshake failed"),  # a server certificate for another address
    ],
)
def test_mismatches_are_refused_clearly_on_both_sides(pki, server_side, client_side, words) -> None:
    refusals: list[str] = []  # what the server logged (and would audit), through its hook

    async def main() -> None:
        server, address = await serve(pki.get(server_side), refusals)
        with pytest.raises(AuthenticationError, match=words):
            await client(address, pki.get(client_side))
        for _ in range(100):  # the server may see the client's alert a moment later
            if refusals:
                break
            await asyncio.sleep(0.01)
        assert not server.connections
        server.close()

    asyncio.run(asyncio.wait_for(main(), 30))
    expected = {
        (None, "client"): "has no TLS settings",
        ("server", None): "this server requires TLS",
        ("server", "stranger"): "TLS handshake failed",
        ("wrong-name", "client"): "TLS handshake failed",  # the client's alert
    }[(server_side, client_side)]
    assert refusals and expected in refusals[-1], refusals


def test_object_streams_over_tls(pki) -> None:
    payload = os.urandom(5 * 1024 * 1024 + 3)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        listener = socket.create_server(("127.0.0.1", 0))
        listener.setblocking(False)
        port = listener.getsockname()[1]

        async def serve_one() -> None:
            sock, _ = await loop.sock_accept(listener)
            sock.setblocking(False)
            stream = await tls.Stream.open(loop, sock, pki["server"], server_side=True)
            await stream.sendall(payload)
            sock.close()

        serving = asyncio.ensure_future(serve_one())
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        stream = await tls.Stream.open(
            loop, sock, pki["client"], server_side=False, server_hostname="127.0.0.1"
        )
        received = bytearray(len(payload))
        view = memoryview(received)
        got = 0
        while got < len(payload):
            n = await stream.recv_into(view[got : got + 1024 * 1024])
            assert n > 0
            got += n
        assert bytes(received) == payload
        await serving
        sock.close()
        listener.close()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_cluster_server_name_stands_for_the_dialled_address(tmp_path: Path) -> None:
    """One certificate for a DNS name serves every node when clients check that name (as on
    Kubernetes, where pods are dialled by IPs no certificate can know in advance)."""
    shared = make_tls(tmp_path / "ca", tmp_path / "shared", ips=[], dns=["nodes.manta.internal"])
    ca, cert, key = shared.files
    named = tls.load(Config(tls_ca=ca, tls_cert=cert, tls_key=key, tls_server_name="nodes.manta.internal"))
    wrong = tls.load(Config(tls_ca=ca, tls_cert=cert, tls_key=key, tls_server_name="other.manta.internal"))

    async def main() -> None:
        server, address = await serve(shared)
        with pytest.raises(AuthenticationError, match="TLS handshake failed"):
            await client(address, shared)  # checked against 127.0.0.1: not in the certificate
        with pytest.raises(AuthenticationError, match="TLS handshake failed"):
            await client(address, wrong)
        conn = await client(address, named)
        assert await conn.call(KvGet("ns", b"k")) == ["ns", b"k"]
        conn.close()
        server.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_https_clients_check_the_cluster_server_name_too(tmp_path: Path) -> None:
    """The job client and the CLI speak HTTPS through the same client context: a head whose
    certificate names only the cluster's server name is accepted at its IP address."""
    import http.server
    import threading
    import urllib.request

    shared = make_tls(tmp_path / "ca", tmp_path / "shared", ips=[], dns=["nodes.manta.internal"])
    ca, cert, key = shared.files
    named = tls.load(Config(tls_ca=ca, tls_cert=cert, tls_key=key, tls_server_name="nodes.manta.internal"))
    assert named is not None

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hello)
    server.socket = shared.http.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{server.server_port}/"
    try:
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=named.client))
        assert opener.open(url, timeout=10).read() == b"hello"
        plain = urllib.request.build_opener(urllib.request.HTTPSHandler(context=shared.client))
        with pytest.raises(urllib.error.URLError, match=r"IP address mismatch|doesn't match"):
            plain.open(url, timeout=10)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
