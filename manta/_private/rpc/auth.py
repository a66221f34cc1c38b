"""Who a peer is, decided by the server from the credential it presents.

A connection's first frame is a ``Hello``: protocol, Manta version, a token, and what the
client says it is (its *kind*: driver, worker, node, cli, ...). The kind is informational;
the *role*, which decides what the peer may do, comes only from the token:

- the cluster's own credential (written 0600 in the session directory, given to nodes
  that join) grants ``cluster``: what the cluster's processes do to each other;
- a user token, issued by ``manta token create`` and checked by a ``Verifier`` that knows
  the issued tokens (the gcs's), grants ``read``, ``submit`` or ``admin``.

Roles are ordered: each includes the ones before it. No user token, admin included, is
``cluster``: a user can run code and manage tokens but cannot act as a node or a worker.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from manta._private.common.config import PROTOCOL_VERSION
from manta._private.common.version import __version__
from manta._private.rpc.messages import Hello

# What a user token looks like: ``mt_<id>_<secret>`` (issued by the gcs's registry).
_USER_TOKEN = re.compile(r"mt_([0-9a-f]{12})_[0-9a-f]{64}")

# In increasing power; ``allows`` reads this order.
USER_ROLES = ("read", "submit", "admin")
ROLES = (*USER_ROLES, "cluster")
RANK = {role: rank for rank, role in enumerate(ROLES)}


@dataclass(frozen=True, slots=True)
class Grant:
    """What a verified token grants: a role, and the token's name (for the audit log)."""

    role: str
    name: str


CLUSTER = Grant("cluster", "cluster")

# Maps a presented token to what it grants, or None when it grants nothing.
Verifier = Callable[[bytes], "Grant | None"]
# One that must ask another process (the client port asks the gcs about user tokens).
AsyncVerifier = Callable[[bytes], Awaitable["Grant | None"]]


def allows(role: str, needed: str) -> bool:
    """Whether ``role`` may do what needs ``needed``."""
    return RANK.get(role, -1) >= RANK[needed]


def cluster_only(cluster_token: bytes) -> Verifier:
    """A verifier that knows only the cluster's credential (node daemons and workers:
    user tokens reach the cluster through the gcs and the HTTP service)."""

    def verify(presented: bytes) -> Grant | None:
        return CLUSTER if hmac.compare_digest(presented, cluster_token) else None

    return verify


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a handshake was refused: an error type the client maps, and a text for it."""

    type_name: str
    text: str


BAD_TOKEN = Refusal(
    "AuthenticationError",
    "the token is missing or wrong (or revoked): use the token of this cluster (read from the "
    "session directory, or MANTA_AUTH_TOKEN for remote clusters) or one `manta token create` issued",
)


USER_TOKEN_REFUSED = Refusal(
    "AuthenticationError",
    "this user token is not accepted here: it is revoked or retired, or this is a node daemon or "
    "worker, which accept only the cluster's own credential (drivers on a cluster host run with the "
    "session's token file; user tokens are for the gcs, the HTTP API and `manta` commands)",
)


def user_token_id(token: Any) -> str | None:
    """The id of ``token`` when it is shaped like a user token (whether or not it is one)."""
    if not isinstance(token, bytes):
        return None
    try:
        match = _USER_TOKEN.fullmatch(token.decode("ascii"))
    except UnicodeDecodeError:
        return None
    return None if match is None else match.group(1)


def admit(hello: Any, verify: Verifier) -> Grant | Refusal:
    """What a ``Hello`` earns, or why it earns nothing."""
    if not isinstance(hello, Hello):
        return Refusal("AuthenticationError", "the first frame must be a handshake")
    grant = verify(hello.token) if isinstance(hello.token, bytes) else None
    if grant is None:
        return USER_TOKEN_REFUSED if user_token_id(hello.token) is not None else BAD_TOKEN
    # Nodes of one cluster run one Manta version (what they exchange may change between
    # releases), and so do remote drivers (they send pickled calls to a driver on the
    # cluster); other clients need the same protocol.
    same_version = hello.kind not in ("node", "client") or hello.version == __version__
    if hello.protocol != PROTOCOL_VERSION or not same_version:
        return Refusal(
            "VersionMismatchError",
            f"version mismatch: this process runs Manta {__version__} (protocol {PROTOCOL_VERSION}), "
            f"the peer runs Manta {hello.version} (protocol {hello.protocol}); run the same Manta "
            "version on every node and every machine that connects to it",
        )
    if hello.kind in ("node", "worker", "gcs") and grant.role != "cluster":
        return Refusal(
            "PermissionDeniedError",
            f"a {hello.kind} must present the cluster's own credential; a user token ({grant.role}) cannot",
        )
    return grant
