"""The web UI's login against a real HTTP client: a token buys an HttpOnly, SameSite=Strict
session cookie; pages and APIs without one go to the login or are refused; a cookie's
state-changing requests must come from the dashboard's own page; logout ends the session;
a revoked token ends its sessions; every response carries the security headers."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

import manta
from tests.polling import wait_until


@pytest.fixture(scope="module")
def head():
    context = manta.init(num_cpus=1, include_dashboard=True)
    host, port = context.dashboard_url.rsplit(":", 1)
    yield {
        "host": host,
        "port": int(port),
        "token": Path(context["session_dir"], "token").read_text().strip(),
        "session_dir": context["session_dir"],
    }
    manta.shutdown()


def call(head: dict[str, Any], method: str, path: str, body: bytes | None = None, **headers: str):
    """(status, headers, body text) of one request, redirects not followed."""
    conn = http.client.HTTPConnection(head["host"], head["port"], timeout=30)
    try:
        conn.request(method, path, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()})
        response = conn.getresponse()
        return response.status, response.headers, response.read().decode()
    finally:
        conn.close()


def log_in(head: dict[str, Any], token: str, **headers: str):
    form = urllib.parse.urlencode({"token": token}).encode()
    return call(head, "POST", "/login", form, Content_Type="application/x-www-form-urlencoded", **headers)


def session_cookie(head: dict[str, Any], token: str | None = None) -> str:
    status, headers, _ = log_in(head, token or head["token"])
    assert status == 303 and headers["Location"] == "/"
    return headers["Set-Cookie"].split(";", 1)[0]  # manta_session=...


def test_without_a_session_pages_go_to_the_login_and_apis_are_refused(head) -> None:
    status, headers, _ = call(head, "GET", "/")
    assert status == 303 and headers["Location"] == "/login"
    status, _, body = call(head, "GET", "/login")
    assert status == 200 and 'name="token"' in body
    assert call(head, "GET", "/static/app.js")[0] == 200  # the page's own files hold no secrets
    status, _, body = call(head, "GET", "/api/session")
    assert status == 401 and "authentication required" in json.loads(body)["error"]
    forged = "manta_session=" + "A" * 43
    assert call(head, "GET", "/api/jobs/", Cookie=forged)[0] == 401
    assert call(head, "GET", "/", Cookie=forged)[1]["Location"] == "/login"


def test_a_bad_token_is_refused_with_a_message_and_a_good_one_gets_a_strict_cookie(head) -> None:
    status, headers, body = log_in(head, "not-a-token")
    assert status == 401 and "not a valid token of this cluster" in body and "Set-Cookie" not in headers
    status, headers, body = log_in(head, "<script>alert(1)</script>")
    assert status == 401 and "<script>" not in body  # the message never echoes input
    status, headers, _ = log_in(head, head["token"])
    assert status == 303
    cookie = headers["Set-Cookie"]
    assert cookie.startswith("manta_session=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain HTTP here (Secure under TLS: tests/integration/test_tls_cluster.py)
    status, _, body = call(head, "GET", "/api/session", Cookie=cookie.split(";", 1)[0])
    assert status == 200 and json.loads(body) == {"name": "cluster", "role": "admin"}
    status, _, page = call(head, "GET", "/", Cookie=cookie.split(";", 1)[0])
    assert status == 200 and "/static/app.js" in page


def test_a_proxys_basic_credentials_do_not_hide_the_session_cookie(head) -> None:
    cookie = session_cookie(head)
    status, _, body = call(head, "GET", "/api/session", Cookie=cookie, Authorization="Basic dXNlcjpwYXNz")
    assert status == 200 and json.loads(body)["role"] == "admin"


def test_a_login_posted_from_another_site_is_refused(head) -> None:
    status, headers, body = log_in(
        head, head["token"], Origin="http://evil.example", Sec_Fetch_Site="cross-site"
    )
    assert status == 403 and "Set-Cookie" not in headers and "own page" in body


def test_a_cookie_changes_nothing_unless_the_dashboards_own_page_sent_the_request(head) -> None:
    cookie = session_cookie(head)
    path = "/api/jobs/no-such-job/stop"
    # A form on another site, and a request with no word of where it came from.
    assert (
        call(head, "POST", path, Cookie=cookie, Origin="http://evil.example", Sec_Fetch_Site="cross-site")[0]
        == 403
    )
    assert call(head, "POST", path, Cookie=cookie)[0] == 403
    # The dashboard's own page: past the check (the job does not exist).
    assert call(head, "POST", path, Cookie=cookie, Sec_Fetch_Site="same-origin")[0] == 404
    origin = f"http://{head['host']}:{head['port']}"
    assert call(head, "POST", path, Cookie=cookie, Origin=origin)[0] == 404
    # Reading is not changing: a plain GET with the cookie is served.
    assert call(head, "GET", "/api/jobs/", Cookie=cookie)[0] == 200
    # A websocket is opened by script: another site's may not ride on the cookie.
    upgrade = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    status, _, _ = call(
        head,
        "GET",
        "/api/jobs/x/logs/tail",
        Cookie=cookie,
        Origin="http://evil.example",
        **{k.replace("-", "_"): v for k, v in upgrade.items()},
    )
    assert status == 403


def admin(head: dict[str, Any], method: str, path: str, body: Any = None) -> Any:
    """An API call with the cluster's own token."""
    data = None if body is None else json.dumps(body).encode()
    status, _, text = call(
        head, method, path, data, Authorization=f"Bearer {head['token']}", Content_Type="application/json"
    )
    assert status == 200, text
    return json.loads(text)


def test_a_read_session_sees_but_may_not_stop(head) -> None:
    viewer = admin(head, "POST", "/api/tokens", {"role": "read", "name": "ui-viewer"})["token"]
    cookie = session_cookie(head, viewer)
    status, _, body = call(head, "GET", "/api/session", Cookie=cookie)
    assert status == 200 and json.loads(body) == {"name": "ui-viewer", "role": "read"}
    status, _, body = call(head, "POST", "/api/jobs/x/stop", Cookie=cookie, Sec_Fetch_Site="same-origin")
    assert status == 403 and "needs the 'submit' role" in body
    # Revoking the token ends its sessions (within the token cache's second).
    admin(head, "DELETE", "/api/tokens/ui-viewer")
    wait_until(lambda: call(head, "GET", "/api/session", Cookie=cookie)[0] == 401, 5, "the session to end")


def test_logout_ends_the_session(head) -> None:
    cookie = session_cookie(head)
    status, headers, _ = call(head, "POST", "/logout", Cookie=cookie, Sec_Fetch_Site="same-origin")
    assert status == 303 and headers["Location"] == "/login"
    assert "manta_session=" in headers["Set-Cookie"]  # cleared in the browser too
    assert call(head, "GET", "/api/session", Cookie=cookie)[0] == 401


@pytest.mark.parametrize("path", ["/", "/login", "/static/app.js", "/api/session", "/api/version", "/nope"])
def test_every_response_carries_the_security_headers(head, path) -> None:
    cookie = session_cookie(head)
    _, headers, _ = call(head, "GET", path, Cookie=cookie)
    policy = headers["Content-Security-Policy"]
    assert (
        "default-src 'self'" in policy
        and "frame-ancestors 'none'" in policy
        and "unsafe-inline" not in policy
    )
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    if not path.startswith("/static/"):
        assert headers["Cache-Control"] == "no-store"
