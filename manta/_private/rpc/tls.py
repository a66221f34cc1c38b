"""TLS for the cluster's TCP channels: RPC connections, object streams and HTTP.

On when the config names a CA certificate, a certificate and its key (``--tls-ca``,
``--tls-cert``, ``--tls-key`` or ``MANTA_TLS_CA/CERT/KEY``; Ray's ``RAY_TLS_*`` names
too). Both ends present certificates signed by the cluster's CA (mutual TLS): a node
without one cannot join, and a client checks the server's certificate against the address
it dialled (its IP address or DNS name must be in the certificate), or against the
cluster's server name when one is set (``MANTA_TLS_SERVER_NAME``: one certificate for
every node, where nodes' addresses are not known in advance).

TLS runs over memory BIOs (``ssl.SSLObject``) that the RPC protocol and the object
streams drive themselves, rather than through asyncio's own TLS transport: so a plaintext
peer on a TLS port, or a TLS peer on a plaintext one, is recognised from its first byte
and both sides are told clearly what is wrong, whichever event loop runs.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from dataclasses import dataclass
from typing import Any, cast

from manta._private.common.config import Config, env_name

# The first byte of every TLS record that opens a connection (a handshake record).
HANDSHAKE_RECORD = 0x16
# Plaintext taken out of TLS per read on an RPC connection (most messages are small), and
# the encrypted bytes an object stream receives per system call (large: fewer, bigger
# steps through Python measured 2x faster on a 1 GiB pull than 256 KiB ones).
_READ_CHUNK = 64 * 1024
_STREAM_CHUNK = 2 * 1024 * 1024

NEEDS_TLS = (
    "this server requires TLS: give the client the cluster's CA and a certificate signed by it "
    "(MANTA_TLS_CA, MANTA_TLS_CERT and MANTA_TLS_KEY, or --tls-ca/--tls-cert/--tls-key)"
)
NO_TLS_HERE = "the client started TLS, but this server has no TLS settings (MANTA_TLS_CA/CERT/KEY)"


@dataclass(frozen=True)
class Tls:
    """The contexts of one process, made from its config."""

    server: ssl.SSLContext  # RPC and object streams: the peer must present a certificate
    client: ssl.SSLContext  # checks the server's certificate and name; presents this one's
    http: ssl.SSLContext  # the HTTP service: client certificates optional (browsers have none)
    files: tuple[str, str, str]


def load(config: Config) -> Tls | None:
    """The TLS contexts ``config`` asks for, or None when it asks for none; ValueError
    naming the setting when they cannot be made."""
    files = {"tls_ca": config.tls_ca, "tls_cert": config.tls_cert, "tls_key": config.tls_key}
    if not any(files.values()):
        return None
    missing = [env_name(k) for k, v in files.items() if not v]
    if missing:
        raise ValueError(f"TLS needs a CA certificate, a certificate and a key: {', '.join(missing)} not set")
    for name, path in files.items():
        if not os.access(path, os.R_OK):
            raise ValueError(f"{env_name(name)} names {path!r}, which cannot be read")
    try:
        server = _context(ssl.PROTOCOL_TLS_SERVER, config, ssl.CERT_REQUIRED)
        http = _context(ssl.PROTOCOL_TLS_SERVER, config, ssl.CERT_OPTIONAL)
        client = _context(ssl.PROTOCOL_TLS_CLIENT, config, ssl.CERT_REQUIRED)
    except (ssl.SSLError, OSError) as e:
        raise ValueError(
            f"cannot load the TLS files ({config.tls_cert}, {config.tls_key}, {config.tls_ca}): {e}"
        ) from None
    return Tls(server, client, http, (config.tls_ca, config.tls_cert, config.tls_key))


class _ServerNameContext(ssl.SSLContext):
    """A client context that checks every server against one name, whatever address was
    dialled (``MANTA_TLS_SERVER_NAME``): RPC, object streams and HTTPS clients alike, since
    each wraps its connection through the context."""

    server_name = ""

    def wrap_socket(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["server_hostname"] = self.server_name
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["server_hostname"] = self.server_name
        return super().wrap_bio(*args, **kwargs)


def _context(protocol: int, config: Config, verify: ssl.VerifyMode) -> ssl.SSLContext:
    if protocol == ssl.PROTOCOL_TLS_CLIENT and config.tls_server_name:
        context: ssl.SSLContext = _ServerNameContext(protocol)
        context.server_name = config.tls_server_name  # type: ignore[attr-defined]
    else:
        context = ssl.SSLContext(protocol)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls_cert, config.tls_key)
    context.load_verify_locations(config.tls_ca)
    context.verify_mode = verify
    return context


# The process's TLS settings: every process of a cluster has one config, set where the
# process starts (daemon, worker, driver, CLI); until then, read from the environment.
_current: list[Tls | None] = []


def use(config: Config) -> Tls | None:
    """Make ``config``'s TLS settings this process's (for connections made from now on)."""
    _current[:] = [load(config)]
    return _current[0]


def current() -> Tls | None:
    if not _current:
        use(Config.from_env())
    return _current[0]


def hostname_of(address: str) -> str:
    """The name a client checks the server's certificate against: the host it dialled
    (a client context made for a cluster server name puts that name instead)."""
    host = address.rpartition(":")[0]
    return host[1:-1] if host.startswith("[") else host


class TlsPump:
    """One TLS session over bytes: feed it what arrived and send what it returns."""

    def __init__(
        self, context: ssl.SSLContext, server_side: bool, server_hostname: str | None = None
    ) -> None:
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(
            self._in, self._out, server_side=server_side, server_hostname=server_hostname
        )
        self.handshaken = False

    def step(self) -> bytes:
        """Advance the handshake; what to send. Raises ssl.SSLError when it fails."""
        if not self.handshaken:
            try:
                self._ssl.do_handshake()
                self.handshaken = True
            except ssl.SSLWantReadError:
                pass
        return self._out.read()

    def feed(self, data: bytes) -> tuple[bytes, bytes]:
        """Take bytes from the peer: (plaintext that arrived, bytes to send back)."""
        self._in.write(data)
        to_send = self.step()
        if not self.handshaken:
            return b"", to_send
        chunks = []
        while True:
            try:
                chunk = self._ssl.read(_READ_CHUNK)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks), to_send + self._out.read()

    def read_into(self, view: memoryview) -> int:
        """Plaintext already received, decrypted straight into ``view``: how many bytes."""
        done = 0
        while done < len(view):
            try:
                # With a buffer, read() decrypts into it and returns a count.
                n = cast(int, self._ssl.read(len(view) - done, view[done:]))  # type: ignore[arg-type]
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                break
            if not n:
                break
            done += n
        return done

    def pending(self) -> bytes:
        """What TLS still has to send (an alert, after a failed handshake)."""
        return self._out.read()

    def received(self, data: bytes | memoryview) -> None:
        self._in.write(data)

    def encrypt(self, data: bytes | memoryview) -> bytes:
        self._ssl.write(data)
        return self._out.read()

    def peer_certificate(self) -> dict[str, Any] | None:
        return self._ssl.getpeercert()


class Stream:
    """A non-blocking socket, with TLS when given a context: what object streams use."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, pump: TlsPump | None) -> None:
        self._loop = loop
        self._sock = sock
        self._pump = pump
        self._scratch = bytearray(_STREAM_CHUNK) if pump is not None else None

    @classmethod
    async def open(
        cls,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        tls: Tls | None,
        server_side: bool,
        server_hostname: str | None = None,
    ) -> Stream:
        """The stream, after the TLS handshake (ssl.SSLError if it fails; a plaintext peer
        of a TLS server fails it too, and vice versa)."""
        if tls is None:
            return cls(loop, sock, None)
        context = tls.server if server_side else tls.client
        stream = cls(loop, sock, TlsPump(context, server_side, server_hostname))
        await stream._handshake()
        return stream

    async def _handshake(self) -> None:
        assert self._pump is not None and self._scratch is not None
        while True:
            out = self._pump.step()
            if out:
                await self._loop.sock_sendall(self._sock, out)
            if self._pump.handshaken:
                return
            n = await self._loop.sock_recv_into(self._sock, self._scratch)
            if n == 0:
                raise ConnectionResetError("the peer closed the stream during the TLS handshake")
            self._pump.received(memoryview(self._scratch)[:n])

    async def sendall(self, data: bytes | memoryview, chunk: int = _STREAM_CHUNK) -> None:
        if self._pump is None:
            await self._loop.sock_sendall(self._sock, data)
            return
        view = memoryview(data)
        for start in range(0, len(view), chunk):
            await self._loop.sock_sendall(self._sock, self._pump.encrypt(view[start : start + chunk]))

    async def recv_into(self, view: memoryview) -> int:
        """Some bytes into ``view`` (0 at the end of the stream)."""
        if self._pump is None:
            return await self._loop.sock_recv_into(self._sock, view)
        assert self._scratch is not None
        while True:
            n = self._pump.read_into(view)
            if n:
                return n
            got = await self._loop.sock_recv_into(self._sock, self._scratch)
            if got == 0:
                return 0
            self._pump.received(memoryview(self._scratch)[:got])
