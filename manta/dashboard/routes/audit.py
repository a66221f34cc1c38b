"""``/api/audit``: the head's audit log, oldest first after a sequence number (admin only;
``manta audit --follow`` polls it)."""

from __future__ import annotations

from aiohttp import web

from manta._private.rpc.messages import access as a
from manta.dashboard.gcs_link import GcsLink
from manta.dashboard.routing import Route, int_query, json_response

MAX_EVENTS = 10_000


def routes(gcs: GcsLink) -> list[Route]:
    async def read_audit(request: web.Request) -> web.Response:
        after = int_query(request, "after", 0, 0, 2**62)
        limit = int_query(request, "limit", 1000, 1, MAX_EVENTS)
        return json_response(await gcs.call(a.ReadAudit(after, limit)))

    return [
        Route(
            "GET",
            "/api/audit",
            read_audit,
            "Audit events with a sequence number above ?after= (default 0), at most ?limit= (default 1000).",
            "admin",
        )
    ]
