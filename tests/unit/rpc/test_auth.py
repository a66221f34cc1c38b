"""The handshake's decision: the token alone decides the role; what the client says it
is (its kind) cannot raise it."""

from __future__ import annotations

from manta._private.common.config import PROTOCOL_VERSION
from manta._private.common.version import __version__
from manta._private.rpc import auth
from manta._private.rpc.auth import Grant, Refusal, admit, allows, cluster_only
from manta._private.rpc.messages import Hello

CLUSTER_TOKEN = b"c" * 64


def verifier(token: bytes) -> Grant | None:
    if token == b"reader":
        return Grant("read", "viewer")
    return cluster_only(CLUSTER_TOKEN)(token)


def hello(
    token: bytes, kind: str = "driver", protocol: int = PROTOCOL_VERSION, version: str = __version__
) -> Hello:
    return Hello(protocol, version, token, kind, b"", {})


def test_roles_are_ordered() -> None:
    assert allows("cluster", "admin") and allows("admin", "submit") and allows("submit", "read")
    assert not allows("read", "submit") and not allows("admin", "cluster")
    assert not allows("", "read") and not allows("root", "read")


def test_the_token_decides_the_role_not_the_client() -> None:
    assert admit(hello(CLUSTER_TOKEN), verifier) == auth.CLUSTER
    assert admit(hello(b"reader", kind="cli"), verifier) == Grant("read", "viewer")
    # A user token claiming to be a node or a worker is refused, with why.
    for kind in ("node", "worker", "gcs"):
        refused = admit(hello(b"reader", kind=kind), verifier)
        assert isinstance(refused, Refusal) and refused.type_name == "PermissionDeniedError"
        assert "cluster's own credential" in refused.text


def test_bad_handshakes_are_refused() -> None:
    assert admit(hello(b"wrong"), verifier) == auth.BAD_TOKEN
    assert admit(Hello(PROTOCOL_VERSION, __version__, "text", "cli", b"", {}), verifier) == auth.BAD_TOKEN
    assert isinstance(admit(["not", "a", "hello"], verifier), Refusal)
    old = admit(hello(CLUSTER_TOKEN, protocol=PROTOCOL_VERSION - 1), verifier)
    assert isinstance(old, Refusal) and old.type_name == "VersionMismatchError"
    # Nodes must match the version exactly; other clients only the protocol.
    assert isinstance(admit(hello(CLUSTER_TOKEN, kind="node", version="0.0.1"), verifier), Refusal)
    assert admit(hello(CLUSTER_TOKEN, kind="cli", version="0.0.1"), verifier) == auth.CLUSTER


def test_a_user_token_where_only_the_cluster_credential_goes_is_told_so() -> None:
    user = b"mt_0123456789ab_" + b"a" * 64
    refused = admit(hello(user), cluster_only(CLUSTER_TOKEN))
    assert refused == auth.USER_TOKEN_REFUSED and "accept only the cluster's own credential" in refused.text
