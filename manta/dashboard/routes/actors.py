"""``POST /api/v0/actors/{id}/kill``: end an actor, as ``manta.kill`` does (``submit`` role;
every kill is in the audit log). ``?no_restart=false`` lets an actor with restarts left
come back, as ``kill(actor, no_restart=False)``."""

from __future__ import annotations

from aiohttp import web

from manta._private.common.ids import ActorID
from manta._private.rpc import messages as m
from manta._private.rpc.transport import RemoteError
from manta.dashboard.gcs_link import GcsLink
from manta.dashboard.routing import RequestError, Route, caller, json_error, json_response


def actor_id_of(text: str) -> ActorID:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != ActorID.SIZE:
        raise RequestError(f"{text[:80]!r} is not an actor id ({ActorID.SIZE * 2} hex digits)")
    return ActorID(raw)


def routes(gcs: GcsLink) -> list[Route]:
    async def kill_actor(request: web.Request) -> web.Response:
        actor_id = actor_id_of(request.match_info["id"])
        flag = request.query.get("no_restart", "true").lower()
        if flag not in ("true", "false"):
            raise RequestError(f"no_restart must be true or false, got {flag[:20]!r}")
        who = caller(request)
        reason = f"killed through the dashboard by {who['by']!r}"
        try:
            await gcs.call(m.KillActor(actor_id, flag == "true", reason))
        except RemoteError as e:
            if e.type_name == "ValueError":  # the gcs knows no such actor
                return json_error(404, e.text)
            raise
        gcs.audit("actor_kill", **who, actor_id=actor_id.hex(), no_restart=flag == "true")
        return json_response({"killed": True})

    return [
        Route(
            "POST",
            "/api/v0/actors/{id}/kill",
            kill_actor,
            "End an actor, as manta.kill does (?no_restart=false lets one with restarts left come back).",
            "submit",
            responses={200: "OK", 400: "Not an actor id", 404: "No such actor"},
        )
    ]
