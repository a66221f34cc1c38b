"""Who is calling: the bearer token decides the role. The cluster's own credential is
``admin`` here; user tokens are checked with the gcs, whose answers are kept for a second
(a revoked token stops working within that)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable

from manta._private.rpc.auth import Grant, user_token_id

logger = logging.getLogger("manta.dashboard")

# How long an answer of the gcs about a token is trusted, and how many are kept.
CACHE_S = 1.0
CACHE_SIZE = 4096


def bearer(header: str | None) -> bytes | None:
    """The token in an ``Authorization: Bearer`` header."""
    if not header:
        return None
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return None
    try:
        return presented.strip().encode("ascii")
    except UnicodeError:  # not a token anyone could have been issued
        return None


class Authenticator:
    def __init__(
        self,
        cluster_token: bytes,
        ask_gcs: Callable[[bytes], Awaitable[Grant | None]],
        clock: Callable[[], float],
    ) -> None:
        self._cluster_token = cluster_token
        self._ask_gcs = ask_gcs
        self._clock = clock
        self._cache: dict[bytes, tuple[Grant | None, float]] = {}

    async def grant_of(self, header: str | None) -> Grant | None:
        """What the request's bearer token grants; raises when the gcs cannot be asked."""
        return await self.grant_for(bearer(header))

    async def grant_for(self, token: bytes | None) -> Grant | None:
        if token is None:
            return None
        if hmac.compare_digest(token, self._cluster_token):
            return Grant("admin", "cluster")
        if user_token_id(token) is None:
            return None
        key = hashlib.sha256(token).digest()
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        grant = await self._ask_gcs(token)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = (grant, now + CACHE_S)
        return grant


def cross_site(method: str, origin: str | None, fetch_site: str | None, host: str | None) -> bool:
    """Whether a state-changing request comes from another site's web page (which a
    browser would send with the user's cookies): such requests are refused."""
    if method in ("GET", "HEAD", "OPTIONS"):
        return False
    if fetch_site is not None:  # set by the browser itself, never by a page's script
        return fetch_site not in ("same-origin", "none")
    if origin is not None and origin != "null" and host is not None:
        return origin.split("://", 1)[-1] != host
    return origin == "null"


def forged_by_cookie(
    method: str, origin: str | None, fetch_site: str | None, host: str | None, websocket: bool = False
) -> bool:
    """Whether a state-changing request (or a websocket, which a script opens) that a
    session cookie authenticates lacks a browser's word that this site's own page sent
    it. Stricter than ``cross_site``: a cookie is sent by the browser on its own, so its
    requests must prove where they come from (browsers send ``Sec-Fetch-Site`` or
    ``Origin`` with every such request)."""
    if method in ("GET", "HEAD", "OPTIONS") and not websocket:
        return False
    if fetch_site is not None:
        return fetch_site != "same-origin"
    if origin is not None and origin != "null" and host is not None:
        return origin.split("://", 1)[-1] != host
    return True


def own_host(host_header: str | None, allowed: frozenset[str]) -> bool:
    """Whether a request's Host names this server: an IP address, localhost, this
    machine's names, or one the operator allowed. Any other name reached us through DNS
    that someone else controls (DNS rebinding), and is refused. Browsers always send a
    Host, so a request without one is no rebinding attack."""
    if not host_header:
        return True
    host = host_header.strip().lower()
    if host.startswith("["):  # [v6]:port
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    return host.rstrip(".") in allowed


def allowed_hosts(extra: str) -> frozenset[str]:
    names = {"localhost", socket.gethostname().lower(), socket.getfqdn().lower()}
    names.update(n.strip().lower() for n in extra.split(",") if n.strip())
    return frozenset(names)
