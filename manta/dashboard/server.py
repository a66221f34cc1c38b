"""The aiohttp application: route modules plugged in, cross-cutting rules in middlewares.

Every request is checked before routing — its Host must name this server (DNS
rebinding), and its bearer token decides its role — so an unknown path answers 401 to a
stranger rather than revealing what exists. Errors are JSON, always:
bad input is a 4xx naming the problem, and an unexpected failure is a 500 with a short
message (the traceback goes to the log, never to the client).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from manta._private.common.ratelimit import RateLimitedLog, RequestBuckets
from manta._private.rpc.auth import allows
from manta.dashboard import openapi, pages
from manta.dashboard.auth import Authenticator, bearer, cross_site, forged_by_cookie, own_host
from manta.dashboard.routing import Audit, Handler, Route, json_error, json_response
from manta.dashboard.sessions import COOKIE, Sessions

logger = logging.getLogger("manta.dashboard")


def _peer(request: web.Request) -> str:
    return request.remote or "unknown"


def _host_check(hosts: frozenset[str], refusals: RateLimitedLog) -> Any:
    @web.middleware
    async def check_host(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not own_host(request.headers.get("Host"), hosts):
            refusals.log(
                logger, f"refused {request.method} {request.path!r} from {_peer(request)}: foreign Host"
            )
            return json_error(
                421,
                f"this service does not answer to the host name {request.headers.get('Host')!r}: use its IP "
                "address, or add the name to MANTA_DASHBOARD_ALLOWED_HOSTS on the head",
            )
        return await handler(request)

    return check_host


def _too_many(wait_s: float) -> web.Response:
    response = json_error(429, f"too many requests: slow down (try again in {wait_s:.1f} s)")
    response.headers["Retry-After"] = str(max(1, round(wait_s)))
    return response


def _authentication(
    auth: Authenticator,
    sessions: Sessions,
    roles: dict[Handler, str],
    public: set[Handler],
    audit: Audit,
    limits: RequestBuckets,
    refusals: RateLimitedLog,
    failures: RateLimitedLog,
) -> Any:
    """Bearer token (or a browser session's) to role; a rate limit per token; cross-site
    refusal; the route's role."""

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        token, by_cookie = _credentials(request, sessions)
        try:
            grant = await auth.grant_for(token)
        except Exception as e:
            failures.log(logger, f"could not check a token with the gcs: {e}")
            return json_error(
                503, "the cluster's gcs cannot be reached to check the token; try again shortly"
            )
        # One token, or one connection before its token is known, cannot take the service
        # for itself; others are not slowed (a shared address is no shared budget).
        wait = limits.wait(f"token:{grant.name}" if grant else f"connection:{id(request.transport)}")
        if wait:
            return _too_many(wait)
        if grant is None and pages.is_public(request, public):
            return await handler(request)
        if grant is None and pages.is_page(request):
            raise web.HTTPSeeOther(pages.LOGIN_PATH)
        if grant is None:
            why = f"refused {request.method} {request.path!r} from {_peer(request)}: no valid token"
            for line in refusals.lines(why):
                logger.warning("%s", line)
                audit("auth_failed", peer=_peer(request), reason=line)
            return json_error(
                401,
                "authentication required: send a token of this cluster as 'Authorization: Bearer <token>' "
                "(set MANTA_AUTH_TOKEN, or pass --token-file to the CLI)",
            )
        if _from_another_site(request, by_cookie):
            refusals.log(
                logger, f"refused cross-site {request.method} {request.path!r} from {_peer(request)}"
            )
            return json_error(403, "cross-site requests may not change the cluster")
        route = request.match_info.route
        needed = roles.get(route.handler)  # None: no route matched (404/405 follow)
        if needed is not None and not allows(grant.role, needed):
            return json_error(403, f"this request needs the {needed!r} role; your token has {grant.role!r}")
        request["role"] = grant.role
        request["token_name"] = grant.name
        return await handler(request)

    return authenticate


def _credentials(request: web.Request, sessions: Sessions) -> tuple[bytes | None, bool]:
    """The request's token, and whether a session cookie rather than the request itself
    presented it."""
    token = bearer(request.headers.get("Authorization"))
    if token is None and COOKIE in request.cookies:  # (a proxy's Basic credentials hide no cookie)
        return sessions.token(request.cookies[COOKIE]), True
    return token, False


def _from_another_site(request: web.Request, by_cookie: bool) -> bool:
    origin, fetch_site = request.headers.get("Origin"), request.headers.get("Sec-Fetch-Site")
    if cross_site(request.method, origin, fetch_site, request.host):
        return True
    websocket = request.headers.get("Upgrade", "").lower() == "websocket"
    return by_cookie and forged_by_cookie(request.method, origin, fetch_site, request.host, websocket)


def _json_errors(failures: RateLimitedLog) -> Any:
    @web.middleware
    async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as e:
            if e.content_type == "application/json" or e.status < 400:
                raise
            default = e.text is None or e.text.startswith(f"{e.status}:")  # aiohttp's "404: Not Found"
            return json_error(e.status, e.reason if default else str(e.text))
        except Exception:
            # Rate-limited like refusals: no request may make the log grow without bound.
            failures.log(
                logger, f"internal error serving {request.method} {request.path!r}:\n{traceback.format_exc()}"
            )
            return json_error(500, "internal error; the head's dashboard log has the details")

    return json_errors


# On every response: what a page may load (only this server's own files; no inline
# script, no frames), and no sniffing, framing, outside referrers or caching of cluster data.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # (Not no-referrer: under it a browser sends "Origin: null" with a page's own forms.)
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


async def _secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)
    if request.secure:
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    if not request.path.startswith(pages.STATIC_PREFIX):
        response.headers["Cache-Control"] = "no-store"


def make_app(
    routes: Iterable[Route],
    auth: Authenticator,
    hosts: frozenset[str],
    audit: Audit,
    limits: RequestBuckets,
    sessions: Sessions,
) -> web.Application:
    """An application serving ``routes`` (each route reads its body with its own limit)
    and the web UI's pages to callers whose Host is one of ``hosts`` (or an IP address)."""
    routes = list(routes)
    roles = {r.handler: r.role for r in routes}
    public: set[Handler] = set()
    refusals = RateLimitedLog(time.monotonic)
    failures = RateLimitedLog(time.monotonic)
    middlewares = [
        _json_errors(failures),
        _host_check(hosts, refusals),
        _authentication(auth, sessions, roles, public, audit, limits, refusals, failures),
    ]
    app = web.Application(middlewares=middlewares)
    app.on_response_prepare.append(_secure_headers)
    pages.Pages(auth, sessions, audit).add_to(app, roles, public)
    doc = openapi.document(routes)

    async def openapi_document(request: web.Request) -> web.Response:
        return json_response(doc)

    roles[openapi_document] = "read"
    app.router.add_get(openapi.OPENAPI_PATH, openapi_document, allow_head=False)
    for r in routes:
        app.router.add_route(r.method, r.path, r.handler)
    return app
