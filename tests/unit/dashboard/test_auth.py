"""Authentication decisions of the HTTP service, without a server."""

from __future__ import annotations

import asyncio

import pytest

from manta._private.rpc.auth import Grant, allows
from manta.dashboard.auth import Authenticator, allowed_hosts, bearer, cross_site, forged_by_cookie, own_host
from manta.dashboard.routing import Field, RequestError, validate_body

USER = "mt_0123456789ab_" + "f" * 64


def test_bearer_header_parsing() -> None:
    assert bearer("Bearer secret") == b"secret" and bearer("bearer  secret ") == b"secret"
    for bad in (None, "", "Bearer", "Bearer ", "Basic secret", "secret", "Bearer \u00e9t\u00e9"):
        assert bearer(bad) is None, bad


def test_tokens_map_to_grants_and_the_gcs_answer_is_kept_a_second() -> None:
    asked: list[bytes] = []
    now = [0.0]

    async def ask(token: bytes) -> Grant | None:
        asked.append(token)
        return Grant("read", "viewer") if token == USER.encode() else None

    auth = Authenticator(b"cluster-secret", ask, lambda: now[0])

    async def main() -> None:
        assert await auth.grant_of("Bearer cluster-secret") == Grant("admin", "cluster")
        assert await auth.grant_of(f"Bearer {USER}") == Grant("read", "viewer")
        assert await auth.grant_of(f"Bearer {USER}") == Grant("read", "viewer")
        assert asked == [USER.encode()]  # the second answer came from the cache
        now[0] += 1.5  # a revocation is seen within the cache's second
        await auth.grant_of(f"Bearer {USER}")
        assert len(asked) == 2
        # Text that is no token at all never reaches the gcs.
        for bad in (
            "Bearer cluster-secre",
            "Bearer cluster-secret2",
            "Bearer ../../etc/passwd",
            "Bearer mt_x_y",
        ):
            assert await auth.grant_of(bad) is None, bad
        assert len(asked) == 2

    asyncio.run(main())


def test_roles_are_ordered() -> None:
    assert allows("admin", "submit") and allows("submit", "read") and allows("read", "read")
    assert not allows("read", "submit") and not allows("submit", "admin")


def test_host_header_must_name_this_server() -> None:
    hosts = allowed_hosts("dash.example.org, Other.Example")
    for ok in (
        None,
        "127.0.0.1:8265",
        "[::1]:8265",
        "10.0.0.5",
        "localhost:8265",
        "dash.example.org",
        "other.example:80",
        "LOCALHOST",
    ):
        assert own_host(ok, hosts), ok
    for bad in (
        "evil.example:8265",
        "127.0.0.1.evil.example",
        "localhost.evil.example",
        "dash.example.org.evil",
    ):
        assert not own_host(bad, hosts), bad


@pytest.mark.parametrize(
    "method,origin,fetch_site,expected",
    [
        ("GET", "http://evil", "cross-site", False),  # reads do not change anything
        ("POST", None, None, False),  # a CLI or SDK sends neither
        ("POST", "http://h:8265", "same-origin", False),
        ("POST", "null", "same-origin", False),  # a page's own form, its origin withheld
        ("POST", "http://evil", None, True),
        ("POST", None, "cross-site", True),
        ("DELETE", None, "same-site", True),
        ("POST", "null", None, True),
    ],
)
def test_cross_site(method: str, origin: str | None, fetch_site: str | None, expected: bool) -> None:
    assert cross_site(method, origin, fetch_site, "h:8265") is expected


@pytest.mark.parametrize(
    "method,origin,fetch_site,websocket,expected",
    [
        ("GET", None, None, False, False),  # reading: a cookie alone is enough
        ("POST", None, None, False, True),  # a browser always says where a POST came from
        ("POST", "http://h:8265", None, False, False),
        ("POST", None, "same-origin", False, False),
        ("POST", "http://h:8265", "same-site", False, True),  # a sibling subdomain's page
        ("POST", "http://evil", None, False, True),
        ("POST", "null", None, False, True),
        ("GET", "http://evil", None, True, True),  # another site's script opening a websocket
        ("GET", "http://h:8265", None, True, False),
    ],
)
def test_forged_by_cookie(
    method: str, origin: str | None, fetch_site: str | None, websocket: bool, expected: bool
) -> None:
    assert forged_by_cookie(method, origin, fetch_site, "h:8265", websocket) is expected


def test_body_validation() -> None:
    fields = (
        Field("a", "string", "A", required=True),
        Field("n", "number", "N", minimum=0),
        Field("m", "object", "M", values="string"),
    )
    assert validate_body({"a": "x"}, fields) == {"a": "x", "n": None, "m": None}
    for body, words in (
        ({"n": 1}, "missing required field 'a'"),
        ({"a": 1}, "must be of type string"),
        ({"a": "x", "n": True}, "must be of type number"),
        ({"a": "x", "n": -1}, "at least 0"),
        ({"a": "x", "m": {"k": 1}}, "map strings"),
        ({"a": "x", "z": 1}, "unknown field(s) ['z']; valid fields are ['a', 'm', 'n']"),
        ([], "must be a JSON object"),
    ):
        with pytest.raises(RequestError) as info:
            validate_body(body, fields)
        assert words in info.value.message
