"""Authentication decisions of the HTTP service, without a server."""

from __future__ import annotations

import pytest

from manta.dashboard.auth import Authenticator, allows, cross_site
from manta.dashboard.routing import Field, RequestError, validate_body


def test_bearer_tokens_map_to_roles() -> None:
    auth = Authenticator({b"secret": "admin", b"viewer": "read"})
    assert auth.role_of("Bearer secret") == "admin"
    assert auth.role_of("bearer viewer") == "read"
    for bad in (None, "", "Bearer", "Bearer ", "Basic secret", "Bearer secre", "Bearer secret2", "secret"):
        assert auth.role_of(bad) is None, bad


def test_roles_are_ordered() -> None:
    assert allows("admin", "submit") and allows("submit", "read") and allows("read", "read")
    assert not allows("read", "submit") and not allows("submit", "admin")


@pytest.mark.parametrize(
    "method,origin,fetch_site,expected",
    [
        ("GET", "http://evil", "cross-site", False),  # reads do not change anything
        ("POST", None, None, False),  # a CLI or SDK sends neither
        ("POST", "http://h:8265", "same-origin", False),
        ("POST", "http://evil", None, True),
        ("POST", None, "cross-site", True),
        ("DELETE", None, "same-site", True),
        ("POST", "null", None, True),
    ],
)
def test_cross_site(method: str, origin: str | None, fetch_site: str | None, expected: bool) -> None:
    assert cross_site(method, origin, fetch_site, "h:8265") is expected


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
