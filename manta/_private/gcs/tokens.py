"""The user tokens a cluster has issued: who may connect, with which role.

A token reads ``mt_<id>_<secret>``: the id finds its record, and only a SHA-256 digest
of the whole token is stored (in the gcs's storage, so tokens survive a gcs restart with
persistent storage); the token itself is shown once, when issued. Rotating a token issues
a new one with the same name and role; the old one keeps working until it is revoked or
its ``retire_after`` passes, so the holders can move over without downtime.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import asdict, dataclass, replace
from typing import Any

from manta._private.common.clock import Clock
from manta._private.gcs.storage import Storage
from manta._private.rpc.auth import USER_ROLES, Grant, user_token_id

_TABLE = "tokens"
_ID_BYTES = 6
_SECRET_BYTES = 32
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
# More than anyone issues by hand; a bound on what an admin token can make the gcs store.
MAX_TOKENS = 10_000


@dataclass(frozen=True, slots=True)
class TokenRecord:
    token_id: str
    name: str
    role: str
    digest: str  # hex SHA-256 of the whole token
    created_at: float
    revoked_at: float | None = None
    retire_at: float | None = None  # set by rotation: refused from then on
    rotated_to: str | None = None

    def active(self, now: float) -> bool:
        return self.revoked_at is None and (self.retire_at is None or now < self.retire_at)

    def public(self, now: float) -> dict[str, Any]:
        """What ``manta token list`` shows: everything but the digest."""
        out = asdict(self)
        del out["digest"]
        out["active"] = self.active(now)
        return out


class TokenError(ValueError):
    """A token request that cannot be done (bad role or name, unknown token)."""


def _digest(token: bytes) -> str:
    return hashlib.sha256(token).hexdigest()


class TokenRegistry:
    """Issues, verifies, lists, revokes and rotates user tokens. No I/O of its own beyond
    the storage it is given; time comes from ``clock``."""

    def __init__(self, storage: Storage, clock: Clock) -> None:
        self._storage = storage
        self._clock = clock
        self._records: dict[str, TokenRecord] = {}
        for key in storage.keys(_TABLE):
            raw = storage.get(_TABLE, key)
            if raw is not None:
                record = TokenRecord(**json.loads(raw))
                self._records[record.token_id] = record

    def _save(self, record: TokenRecord) -> None:
        self._records[record.token_id] = record
        self._storage.put(_TABLE, record.token_id.encode(), json.dumps(asdict(record)).encode())

    def verify(self, token: bytes) -> Grant | None:
        token_id = user_token_id(token)
        record = None if token_id is None else self._records.get(token_id)
        if record is None or not hmac.compare_digest(record.digest, _digest(token)):
            return None
        return Grant(record.role, record.name) if record.active(self._clock.time()) else None

    def issue(self, role: str, name: str = "", succeeding: str | None = None) -> tuple[TokenRecord, str]:
        """A new token; the text is returned once and never stored. ``succeeding``: the id
        of the token it replaces, which may hold the same name meanwhile."""
        if role not in USER_ROLES:
            raise TokenError(f"unknown role {role!r}: choose one of {', '.join(USER_ROLES)}")
        self._check_room()
        token_id = secrets.token_hex(_ID_BYTES)
        name = name or f"{role}-{token_id[:6]}"
        if not _NAME.fullmatch(name):
            raise TokenError(
                f"bad token name {name!r}: use 1-64 letters, digits and . _ @ -, starting with a letter or digit"
            )
        if any(r.token_id != succeeding for r in self._active_named(name)):
            raise TokenError(
                f"an active token is already named {name!r}: rotate or revoke it, or pick another name"
            )
        text = f"mt_{token_id}_{secrets.token_hex(_SECRET_BYTES)}"
        record = TokenRecord(token_id, name, role, _digest(text.encode()), self._clock.time())
        self._save(record)
        return record, text

    def _check_room(self) -> None:
        if len(self._records) >= MAX_TOKENS:
            raise TokenError(f"this cluster has issued {MAX_TOKENS} tokens, the most it keeps records of")

    def _active_named(self, name: str) -> list[TokenRecord]:
        now = self._clock.time()
        return [
            r for r in self._records.values() if r.name == name and r.active(now) and r.rotated_to is None
        ]

    def find(self, ref: str) -> TokenRecord:
        """The token with id ``ref``, else the active one named ``ref``."""
        record = self._records.get(ref)
        if record is not None:
            return record
        named = self._active_named(ref)
        if not named:
            raise TokenError(f"no token has the id or active name {ref!r} (see `manta token list`)")
        return named[0]

    def listing(self) -> list[dict[str, Any]]:
        now = self._clock.time()
        return [r.public(now) for r in sorted(self._records.values(), key=lambda r: r.created_at)]

    def revoke(self, ref: str) -> TokenRecord:
        record = self.find(ref)
        if record.revoked_at is None:
            record = replace(record, revoked_at=self._clock.time())
            self._save(record)
        return record

    def rotate(self, ref: str, retire_after_s: float | None) -> tuple[TokenRecord, TokenRecord, str]:
        """A new token for ``ref``'s name and role; the old one stays valid until revoked,
        or for ``retire_after_s`` seconds when given. Returns (old, new, new token text)."""
        old = self.find(ref)
        now = self._clock.time()
        if not old.active(now) or old.rotated_to is not None:
            raise TokenError(
                f"token {old.token_id} ({old.name}) is revoked or rotated already; rotate its successor"
            )
        if retire_after_s is not None and not 0 <= retire_after_s < float("inf"):
            raise TokenError("retire_after_s must be a non-negative number of seconds")
        new, text = self.issue(old.role, old.name, succeeding=old.token_id)
        retire_at = None if retire_after_s is None else now + retire_after_s
        old = replace(old, rotated_to=new.token_id, retire_at=retire_at)
        self._save(old)
        return old, new, text
