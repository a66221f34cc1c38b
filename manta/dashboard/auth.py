"""Who is calling: the bearer token decides the role, and refusals are logged without
letting a flood of them fill the disk."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

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


@dataclass
class RateLimitedLog:
    """At most ``per_window`` lines per ``window_s``; the rest are counted and reported in
    one line when the next window opens."""

    clock: Callable[[], float]
    per_window: int = 20
    window_s: float = 60.0
    _window_start: float = field(default=float("-inf"), init=False)
    _in_window: int = field(default=0, init=False)
    _suppressed: int = field(default=0, init=False)

    def lines(self, line: str) -> list[str]:
        """The lines to write now for this event (none when over the limit)."""
        now = self.clock()
        out = []
        if now - self._window_start >= self.window_s:
            if self._suppressed:
                out.append(f"{self._suppressed} similar lines suppressed in the last {self.window_s:.0f} s")
            self._window_start, self._in_window, self._suppressed = now, 0, 0
        if self._in_window < self.per_window:
            self._in_window += 1
            out.append(line)
        else:
            self._suppressed += 1
        return out

    def log(self, line: str) -> None:
        for text in self.lines(line):
            logger.warning("%s", text)


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
