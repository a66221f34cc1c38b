"""``/api/v0/logs``: the cluster's log files over HTTP, in the paths and query parameters of
Ray's state API server, for any caller with the read role.

- ``GET /api/v0/logs?node_id=&node_ip=&glob=``: one node's files by category (the head's
  when no node is named), under ``data.result``.
- ``GET /api/v0/logs/file?...``: a file's last ``lines`` lines (1000; -1 for all of it) as
  text; ``/api/v0/logs/stream`` goes on sending what is written to it until the client
  leaves. Which file: ``filename`` (with ``node_id``/``node_ip``, else the head's or the
  only node's), or ``actor_id``, ``task_id`` (``attempt_number``), ``pid`` or
  ``submission_id``; ``suffix=err`` for a worker's stderr.

Only files directly inside a node's logs directory are served: a name with a path in it,
``..``, percent-encoding, or a link leading out is refused (400), the audit log too (403,
it is the admin's, at ``/api/audit``), and ids that name nothing are a 404 naming them.
Unlike Ray's (500 with plain text), every refusal is a JSON error with its status.
"""

from __future__ import annotations

import contextlib
from typing import Any

from aiohttp import web

from manta._private.api import logs as api
from manta.dashboard.gcs_link import GcsLink
from manta.dashboard.routing import RequestError, Route, int_query, json_error, json_response

_SELECTORS = ("filename", "actor_id", "task_id", "pid", "submission_id")
_FOUND = {200: "OK", 400: "a bad name or id", 403: "a file not served here", 404: "no such file, id or node"}


async def _target(gcs: GcsLink, query: Any) -> api.LogTarget:
    given = [name for name in _SELECTORS if query.get(name)]
    if len(given) != 1:
        raise RequestError(
            f"give exactly one of the query parameters {', '.join(_SELECTORS)} (got {given or 'none'})"
        )
    suffix = query.get("suffix", "out")
    if suffix not in ("out", "err"):
        raise RequestError(f"query parameter 'suffix' must be 'out' or 'err', got {suffix[:20]!r}")
    err = suffix == "err"
    token, config = gcs.node_credential()
    node_id, node_ip = query.get("node_id"), query.get("node_ip")
    if given[0] == "filename":
        return await api.file_target(gcs, token, config, query["filename"], node_id, node_ip)
    if given[0] == "actor_id":
        return await api.actor_target(gcs, query["actor_id"], err)
    if given[0] == "task_id":
        attempt = query.get("attempt_number", "0")
        if not attempt.isdigit():
            raise RequestError(f"query parameter 'attempt_number' must be an integer, got {attempt[:20]!r}")
        return await api.task_target(gcs, query["task_id"], int(attempt), err)
    if given[0] == "pid":
        if not query["pid"].isdigit():
            raise RequestError(f"query parameter 'pid' must be an integer, got {query['pid'][:20]!r}")
        return await api.pid_target(gcs, token, config, int(query["pid"]), node_id, node_ip, err)
    return await api.job_target(gcs, token, config, query["submission_id"])


async def _list(gcs: GcsLink, request: web.Request) -> web.Response:
    token, config = gcs.node_credential()
    node_id, node_ip = request.query.get("node_id"), request.query.get("node_ip")
    try:
        listings = await api.list_logs(gcs, token, config, node_id, node_ip, request.query.get("glob", "*"))
    except api.LogLookupError as e:
        return json_error(e.status, str(e))
    if not node_id and not node_ip:
        listings = listings[:1]  # the head's (it comes first)
    names = [row[0] for _info, listing in listings for row in listing.files]
    return json_response({"result": True, "msg": "", "data": {"result": api.categorize(names)}})


async def _read(gcs: GcsLink, request: web.Request, follow: bool) -> web.StreamResponse:
    lines = int_query(request, "lines", api.DEFAULT_TAIL, -1, 10_000_000)
    token, config = gcs.node_credential()
    response: web.StreamResponse | None = None
    try:
        target = await _target(gcs, request.query)
        async with api.node_connection(target.node, token, config) as conn:
            reader = api.LogReader(conn, target, lines, follow)
            # The first chunk is read before the answer starts: a refusal is still a JSON error.
            async with contextlib.aclosing(reader.chunks(idle_ticks=True)) as chunks:
                async for chunk in chunks:
                    if response is None:
                        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
                        await response.prepare(request)
                    elif request.transport is None or request.transport.is_closing():
                        break  # the follower left
                    if chunk:
                        await response.write(chunk)
    except api.LogLookupError as e:
        if response is None:
            return json_error(e.status, str(e))
        # Otherwise the file went away mid-stream: the answer ends there.
    except ConnectionResetError:
        pass  # the client left
    if response is None:
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await response.prepare(request)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


def routes(gcs: GcsLink) -> list[Route]:
    async def list_logs(request: web.Request) -> web.Response:
        return await _list(gcs, request)

    async def get_file(request: web.Request) -> web.StreamResponse:
        return await _read(gcs, request, follow=False)

    async def stream_file(request: web.Request) -> web.StreamResponse:
        return await _read(gcs, request, follow=True)

    return [
        Route(
            "GET",
            "/api/v0/logs",
            list_logs,
            "A node's log files by category: ?node_id= or ?node_ip= (default: the head), ?glob=.",
            responses={200: "OK", 400: "a bad node id", 404: "no such node"},
        ),
        Route(
            "GET",
            "/api/v0/logs/file",
            get_file,
            "A log file's last ?lines= lines (default 1000, -1: all), as text: by ?filename= (and "
            "?node_id=/?node_ip=), ?actor_id=, ?task_id= (?attempt_number=), ?pid= or ?submission_id=; "
            "?suffix=err for a worker's stderr.",
            responses=_FOUND,
        ),
        Route(
            "GET",
            "/api/v0/logs/stream",
            stream_file,
            "As /api/v0/logs/file, then what is written to the file, until the client leaves.",
            responses=_FOUND,
        ),
    ]
