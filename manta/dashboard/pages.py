"""The web UI's pages: the login form, the one page that shows the cluster, and the
static files they load. Everything the UI shows comes from the JSON APIs; the pages
only hold the scripts that ask them. A browser logs in with a token and is then known
by a session cookie (sessions.py)."""

from __future__ import annotations

import html
import time
from pathlib import Path

from aiohttp import web

from manta._private.common.ratelimit import RateLimitedLog
from manta.dashboard.auth import Authenticator, cross_site
from manta.dashboard.routing import Audit, Handler, json_response
from manta.dashboard.sessions import COOKIE, MAX_AGE_S, Sessions

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/static/"
LOGIN_PATH = "/login"
# Where the login form's message goes (an HTML comment in login.html).
_MESSAGE_SLOT = "<!--message-->"


class Pages:
    """The page handlers. The UI needs ``read``; the login form and the static files are
    for anyone (they hold nothing of the cluster's)."""

    def __init__(self, auth: Authenticator, sessions: Sessions, audit: Audit) -> None:
        self._auth, self._sessions, self._audit = auth, sessions, audit
        # Failed logins reach the audit log at a bounded rate, as other refusals do.
        self._failures = RateLimitedLog(time.monotonic)

    def add_to(self, app: web.Application, roles: dict[Handler, str], public: set[Handler]) -> None:
        app.router.add_get("/", self.index, allow_head=False)
        app.router.add_get(LOGIN_PATH, self.login_form, allow_head=False)
        app.router.add_post(LOGIN_PATH, self.login)
        app.router.add_post("/logout", self.logout)
        app.router.add_get("/api/session", self.whoami, allow_head=False)
        app.router.add_static(STATIC_PREFIX, STATIC_DIR, append_version=False)
        roles.update({self.index: "read", self.logout: "read", self.whoami: "read"})
        public.update({self.login_form, self.login})

    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    async def login_form(self, request: web.Request) -> web.Response:
        return _login_page("", 200)

    async def login(self, request: web.Request) -> web.StreamResponse:
        headers = request.headers
        if cross_site(request.method, headers.get("Origin"), headers.get("Sec-Fetch-Site"), request.host):
            return _login_page("Log in from this dashboard's own page.", 403)
        form = await request.post()
        raw = form.get("token")
        token = raw.strip().encode("ascii", "replace") if isinstance(raw, str) else b""
        grant = await self._auth.grant_for(token or None)
        peer = request.remote or "unknown"
        if grant is None:
            for line in self._failures.lines(f"a login from {peer} with a token that is not valid"):
                self._audit("auth_failed", peer=peer, reason=line)
            return _login_page(
                "That is not a valid token of this cluster. Use the one in the head's session "
                "directory, or one made with `manta token create`.",
                401,
            )
        self._audit("login", by=grant.name, role=grant.role, peer=peer)
        response = web.HTTPSeeOther("/")
        response.set_cookie(
            COOKIE,
            self._sessions.create(token),
            httponly=True,
            samesite="Strict",
            secure=request.secure,
            path="/",
            max_age=int(MAX_AGE_S),
        )
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        self._sessions.end(request.cookies.get(COOKIE))
        self._audit(
            "logout", by=request["token_name"], role=request["role"], peer=request.remote or "unknown"
        )
        response = web.HTTPSeeOther(LOGIN_PATH)
        response.del_cookie(COOKIE, path="/")
        return response

    async def whoami(self, request: web.Request) -> web.Response:
        return json_response({"name": request["token_name"], "role": request["role"]})


def is_page(request: web.Request) -> bool:
    """A request a browser makes to show a page (sent to log in when refused)."""
    return request.method == "GET" and request.path == "/"


def is_public(request: web.Request, public: set[Handler]) -> bool:
    if request.path.startswith(STATIC_PREFIX) and request.method in ("GET", "HEAD"):
        return True
    return request.match_info.route.handler in public


def _login_page(message: str, status: int) -> web.Response:
    page = (STATIC_DIR / "login.html").read_text()
    shown = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
    return web.Response(text=page.replace(_MESSAGE_SLOT, shown), status=status, content_type="text/html")
