"""``/api/version``: what the server speaks, for clients to check before anything else."""

from __future__ import annotations

from aiohttp import web

from manta._private.common.version import RAY_API_VERSION, __version__
from manta.dashboard.routing import Route, json_response

# The jobs API's own version: bumped when its requests or replies change incompatibly.
API_VERSION = "1"


def routes() -> list[Route]:
    async def get_version(request: web.Request) -> web.Response:
        return json_response(
            {
                "version": API_VERSION,
                "manta_version": __version__,
                # Ray's job client refuses a server older than Ray 1.9: say which API this is.
                "ray_version": RAY_API_VERSION,
                "ray_commit": "",
            }
        )

    return [Route("GET", "/api/version", get_version, "The API and Manta versions.")]
