"""Who is calling: the bearer token decides the role, and refusals are logged without
letting a flood of them fill the disk."""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

from manta.dashboard.routing import ROLES

logger = logging.getLogger("manta.dashboard")


@dataclass
class Authenticator:
    """Maps a presented token to its role. Today the cluster token is the only credential
    and it is ``admin``; scoped tokens are added here, never decided by the client."""

    tokens: dict[bytes, str]

    def role_of(self, header: str | None) -> str | None:
        if not header:
            return None
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return None
        try:
            candidate = presented.strip().encode()
        except UnicodeError:  # not a token we could have issued
            return None
        found = None
        # Compare with every token in constant time, so timing does not reveal a prefix.
        for token, role in self.tokens.items():
            if hmac.compare_digest(candidate, token):
                found = role
        return found


def allows(role: str, needed: str) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


def cross_site(method: str, origin: str | None, fetch_site: str | None, host: str | None) -> bool:
    """Whether a state-changing request comes from another site's web page (which a
    browser would send with the user's cookies): such requests are refused."""
    if method in ("GET", "HEAD", "OPTIONS"):
        return False
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return True
    if origin is not None and origin != "null" and host is not None:
        return origin.split("://", 1)[-1] != host
    return origin == "null"
