"""Browser sessions: logging in exchanges a token for a random session id, which the
browser keeps in an HttpOnly cookie. The server keeps the token (in memory only) and
checks every request as that token's, so revoking the token ends its sessions too. A
session ends at logout, after a while unused, or at its age limit; past a bound on their
number the oldest go first. The dashboard restarting ends them all (log in again)."""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

COOKIE = "manta_session"
IDLE_S = 8 * 3600.0
MAX_AGE_S = 24 * 3600.0
MAX_SESSIONS = 10_000
# Past this many sessions of one token, its oldest goes: one token holder logging in again
# and again cannot push everyone else's sessions out.
MAX_SESSIONS_PER_TOKEN = 100
# A session id is 32 random bytes, url-safe base64: 43 characters.
_ID_CHARS = 43


@dataclass(slots=True)
class _Session:
    token: bytes
    created: float
    used: float


class Sessions:
    def __init__(
        self,
        clock: Callable[[], float],
        idle_s: float = IDLE_S,
        max_age_s: float = MAX_AGE_S,
        limit: int = MAX_SESSIONS,
        per_token: int = MAX_SESSIONS_PER_TOKEN,
    ) -> None:
        self._clock, self._idle, self._max_age, self._limit = clock, idle_s, max_age_s, limit
        self._per_token = per_token
        # By a hash of the id: the ids themselves are never held, nor compared byte by byte.
        self._sessions: OrderedDict[bytes, _Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, token: bytes) -> str:
        session_id = secrets.token_urlsafe(32)
        now = self._clock()
        own = [key for key, session in self._sessions.items() if session.token == token]
        for key in own[: max(len(own) - self._per_token + 1, 0)]:
            del self._sessions[key]
        self._sessions[_key(session_id)] = _Session(token, now, now)
        while len(self._sessions) > self._limit:
            self._sessions.popitem(last=False)
        return session_id

    def token(self, session_id: str | None) -> bytes | None:
        """The token a live session was opened with (its use keeps it alive)."""
        if not session_id or len(session_id) != _ID_CHARS:
            return None
        key = _key(session_id)
        session = self._sessions.get(key)
        if session is None:
            return None
        now = self._clock()
        if now - session.used > self._idle or now - session.created > self._max_age:
            del self._sessions[key]
            return None
        session.used = now
        return session.token

    def end(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(_key(session_id), None)


def _key(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("utf-8", "replace")).digest()
