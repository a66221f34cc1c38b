"""``/api/tokens``: issue, list, revoke and rotate user tokens (admin only). The gcs keeps
them; a token's text is in the reply that issues it and nowhere else."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from manta._private.rpc.auth import USER_ROLES
from manta._private.rpc.messages import access as a
from manta._private.rpc.transport import RemoteError
from manta.dashboard.gcs_link import GcsLink
from manta.dashboard.routing import Field, Route, json_error, json_response, read_json

ISSUE_FIELDS = (
    Field(
        "role",
        "string",
        f"what the token may do: one of {', '.join(USER_ROLES)}",
        required=True,
        nullable=False,
    ),
    Field("name", "string", "a name for the token, unique among active ones (default: made up)"),
)
ROTATE_FIELDS = (
    Field(
        "retire_after_s",
        "number",
        "seconds the old token keeps working (default: until it is revoked)",
        minimum=0,
    ),
)


class _TokenRoutes:
    def __init__(self, gcs: GcsLink) -> None:
        self.gcs = gcs

    async def _ask(self, msg: Any) -> web.Response:
        try:
            return json_response(await self.gcs.call(msg))
        except RemoteError as e:
            if e.type_name != "TokenError":
                raise
            # A request the registry cannot do, said by it.
            return json_error(404 if e.text.startswith("no token has") else 400, e.text)

    async def issue(self, request: web.Request) -> web.Response:
        body = await read_json(request, ISSUE_FIELDS)
        return await self._ask(a.IssueToken(body["role"], body["name"] or "", request["token_name"]))

    async def listing(self, request: web.Request) -> web.Response:
        return await self._ask(a.ListTokens())

    async def revoke(self, request: web.Request) -> web.Response:
        return await self._ask(a.RevokeToken(request.match_info["ref"], request["token_name"]))

    async def rotate(self, request: web.Request) -> web.Response:
        body = await read_json(request, ROTATE_FIELDS)
        retire = None if body["retire_after_s"] is None else float(body["retire_after_s"])
        return await self._ask(a.RotateToken(request.match_info["ref"], retire, request["token_name"]))


def routes(gcs: GcsLink) -> list[Route]:
    h = _TokenRoutes(gcs)
    known = {200: "OK", 404: "no such token"}
    return [
        Route("GET", "/api/tokens", h.listing, "List the issued tokens (never their text).", "admin"),
        Route("POST", "/api/tokens", h.issue, "Issue a token.", "admin", ISSUE_FIELDS),
        Route(
            "DELETE",
            "/api/tokens/{ref}",
            h.revoke,
            "Revoke a token (by id or name).",
            "admin",
            responses=known,
        ),
        Route(
            "POST",
            "/api/tokens/{ref}/rotate",
            h.rotate,
            "Issue a successor of a token; the old one works until retired.",
            "admin",
            ROTATE_FIELDS,
            known,
        ),
    ]
