"""The token registry: issued tokens verify with their role, revoked and retired ones do
not, rotation keeps the old token working for its grace, and a restarted gcs (the same
storage) knows them all. Time is a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from manta._private.common.clock import FakeClock
from manta._private.gcs.storage import MemoryStorage
from manta._private.gcs.tokens import TokenError, TokenRegistry
from manta._private.rpc.auth import Grant


def registry() -> tuple[TokenRegistry, MemoryStorage, FakeClock]:
    storage, clock = MemoryStorage(), FakeClock()
    return TokenRegistry(storage, clock), storage, clock


def test_issue_verify_and_the_stored_digest_only() -> None:
    tokens, storage, _ = registry()
    _, text = tokens.issue("read", "viewer")
    assert tokens.verify(text.encode()) == Grant("read", "viewer")
    # The token itself is never stored: only a digest of it.
    stored = b"".join(storage.get("tokens", k) or b"" for k in storage.keys("tokens"))
    assert text.encode() not in stored and text.split("_")[2].encode() not in stored
    # Same id, other secret: refused.
    forged = text[:-4] + ("0000" if not text.endswith("0000") else "1111")
    assert tokens.verify(forged.encode()) is None
    assert [r["name"] for r in tokens.listing()] == ["viewer"]
    assert "digest" not in tokens.listing()[0]


@given(st.binary(max_size=200))
def test_random_bytes_never_verify(junk: bytes) -> None:
    tokens, _, _ = registry()
    tokens.issue("admin", "root")
    assert tokens.verify(junk) is None


def test_bad_requests_are_refused_with_what_to_do() -> None:
    tokens, _, _ = registry()
    with pytest.raises(TokenError, match="unknown role 'cluster'"):
        tokens.issue("cluster", "sneaky")  # no user token may be a cluster component
    with pytest.raises(TokenError, match="bad token name"):
        tokens.issue("read", "../etc")
    tokens.issue("read", "viewer")
    with pytest.raises(TokenError, match="already named 'viewer'"):
        tokens.issue("submit", "viewer")
    with pytest.raises(TokenError, match="no token has the id or active name"):
        tokens.revoke("nobody")
    assert tokens.issue("submit")[0].name.startswith("submit-")


def test_revoke_by_name_or_id() -> None:
    tokens, _, _ = registry()
    _, a_text = tokens.issue("submit", "alice")
    b, b_text = tokens.issue("submit", "bob")
    tokens.revoke("alice")
    tokens.revoke(b.token_id)
    assert tokens.verify(a_text.encode()) is None and tokens.verify(b_text.encode()) is None
    assert [r["active"] for r in tokens.listing()] == [False, False]
    # The name is free again once its token is revoked.
    assert tokens.issue("read", "alice")[0].role == "read"


def test_rotation_keeps_the_old_token_until_retired() -> None:
    tokens, _, clock = registry()
    old, old_text = tokens.issue("admin", "ops")
    replaced, new, new_text = tokens.rotate("ops", retire_after_s=60)
    assert new.name == "ops" and new.role == "admin" and replaced.rotated_to == new.token_id
    assert tokens.verify(new_text.encode()) == Grant("admin", "ops")
    assert tokens.verify(old_text.encode()) == Grant("admin", "ops")  # still, during the grace
    assert tokens.find("ops").token_id == new.token_id
    clock.advance(61)
    assert tokens.verify(old_text.encode()) is None
    assert tokens.verify(new_text.encode()) == Grant("admin", "ops")
    with pytest.raises(TokenError, match="rotated already"):
        tokens.rotate(old.token_id, None)
    # Without a grace, the old one works until it is revoked.
    _, _, third = tokens.rotate("ops", None)
    clock.advance(10**6)
    assert tokens.verify(new_text.encode()) is not None
    tokens.revoke(new.token_id)
    assert tokens.verify(new_text.encode()) is None and tokens.verify(third.encode()) is not None


def test_tokens_survive_a_restart_on_the_same_storage() -> None:
    tokens, storage, clock = registry()
    _, keep = tokens.issue("read", "keep")
    _, gone = tokens.issue("read", "gone")
    tokens.revoke("gone")
    again = TokenRegistry(storage, clock)
    assert again.verify(keep.encode()) == Grant("read", "keep")
    assert again.verify(gone.encode()) is None
