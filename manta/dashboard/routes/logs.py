"""``/api/v0/logs``: the cluster's log files over HTTP, in the paths and query parameters of
Ray's state API server, for any caller with the read role.

- ``GET /api/v0/logs?node_id=&node_ip=&glob=``: one node's files by category (the head's
  when no node is named: only the head is asked), under ``data.result``.
- ``GET /api/v0/logs/file?...``: a file's last ``lines`` lines (1000; -1 for all of it) as
  text; ``/api/v0/logs/stream`` goes on sending what is written to it until the client
  leaves, or for at most ``MAX_FOLLOW_S``. Which file: ``filename`` (exactly that name,
  with ``node_id``/``node_ip``, else the head's or the only node's), or ``actor_id``,
  ``task_id`` (``attempt_number``), ``pid`` or ``submission_id``; ``suffix=err`` for a
  worker's stderr.

An answer is at most ``api.MAX_ANSWER_BYTES`` of a file. Headers say what it holds:
``X-Manta-Log-Lines`` how many lines (when a number was asked for; fewer than asked when
they did not fit) and ``X-Manta-Log-Truncated`` whether lines before them were left out.
Where an answer was cut or ended early, its last line says so (``--- manta: ... ---``).

Only files directly inside a node's logs directory are served: a name with a path in it,
``..``, percent-encoding, or a link leading out is refused (400), the audit log too (403,
it is the admin's, at ``/api/audit``), and ids that name nothing are a 404 naming them. A
node or the gcs that does not answer is a 503 before the answer starts, and ends it after.
Follows are limited per token and in all (429 past either). Unlike Ray's (500 with plain
text), every refusal is a JSON error with its status.
"""

from __future__ import annotations

import contextlib
from typing import Any

from aiohttp import web

from manta._private.api import logs as api
from manta.dashboard.gcs_link import GcsLink
from manta.dashboard.routing import RequestError, Route, int_query, json_error, json_response

_SELECTORS = ("filename", "actor_id", "task_id", "pid", "submission_id")
_FOUND = {
    200: "OK",
    400: "a bad name or id",
    403: "a file not served here",
    404: "no such file, id or node",
    503: "the node holding the file, or the gcs, did not answer",
}
# Follows open at once, per token and in all: each holds a node read every half second
# and a connection; past either cap a follow is refused (429) rather than queued.
MAX_FOLLOWS_PER_TOKEN = 4
MAX_FOLLOWS = 32
# The longest one follow lasts; it then ends with a notice, and the client asks again.
MAX_FOLLOW_S = 3600.0
_TEXT = "text/plain; charset=utf-8"


class FollowSlots:
    """Counts the follows each token has open, and refuses one past either cap."""

    def __init__(self, per_token: int, total: int) -> None:
        self._per_token = per_token
        self._total = total
        self._open: dict[str, int] = {}

    def acquire(self, token_name: str) -> str | None:
        """Take a slot for ``token_name``; why not, when it is refused."""
        if sum(self._open.values()) >= self._total:
            return f"{self._total} log follows are open on this cluster, the most it serves: try again later"
        if self._open.get(token_name, 0) >= self._per_token:
            return (
                f"this token has {self._per_token} log follows open, the most one token may: close one first"
            )
        self._open[token_name] = self._open.get(token_name, 0) + 1
        return None

    def release(self, token_name: str) -> None:
        self._open[token_name] -= 1
        if not self._open[token_name]:
            del self._open[token_name]


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
    glob = request.query.get("glob", "*")
    try:
        # No node named: the head's files, so only the head (first) is asked.
        listings = await api.list_logs(
            gcs, token, config, node_id, node_ip, glob, first_only=not node_id and not node_ip
        )
    except api.LogLookupError as e:
        return json_error(e.status, str(e))
    except api.UNREACHABLE as e:
        return json_error(503, f"the cluster did not answer: {_reason(e)}")
    names = [row[0] for _info, listing in listings[:1] for row in listing.files]
    return json_response({"result": True, "msg": "", "data": {"result": api.categorize(names)}})


def _headers(reader: api.LogReader) -> dict[str, str]:
    headers = {"Content-Type": _TEXT, "X-Manta-Log-Truncated": "true" if reader.truncated else "false"}
    if reader.lines_kept is not None:
        headers["X-Manta-Log-Lines"] = str(reader.lines_kept)
    return headers


def _reason(error: BaseException) -> str:
    return str(error) or type(error).__name__


class _Answer:
    """The streamed answer of one read: started at its first chunk, so that a refusal
    before it is still a JSON error; a notice goes on a line of its own."""

    def __init__(self, request: web.Request) -> None:
        self._request = request
        self.response: web.StreamResponse | None = None
        self._at_line_start = True

    async def start(self, headers: dict[str, str]) -> None:
        self.response = web.StreamResponse(headers=headers)
        await self.response.prepare(self._request)

    @property
    def client_left(self) -> bool:
        return self._request.transport is None or self._request.transport.is_closing()

    async def write(self, item: bytes | api.Notice) -> None:
        assert self.response is not None
        if isinstance(item, api.Notice):
            item = (b"" if self._at_line_start else b"\n") + f"--- manta: {item.text} ---\n".encode()
        if item:
            await self.response.write(item)
            self._at_line_start = item.endswith(b"\n")

    async def end(self) -> web.StreamResponse:
        if self.response is None:
            await self.start({"Content-Type": _TEXT})
        assert self.response is not None
        with contextlib.suppress(ConnectionResetError):
            await self.response.write_eof()
        return self.response


async def _read(
    gcs: GcsLink, pool: api.NodeConnections, request: web.Request, follow: bool
) -> web.StreamResponse:
    lines = int_query(request, "lines", api.DEFAULT_TAIL, -1, 10_000_000)
    answer = _Answer(request)
    try:
        target = await _target(gcs, request.query)
        async with pool.connection(target.node) as conn:
            reader = api.LogReader(conn, target, lines, follow, max_follow_s=MAX_FOLLOW_S if follow else None)
            async with contextlib.aclosing(reader.chunks(idle_ticks=True)) as chunks:
                async for item in chunks:
                    if answer.response is None:
                        await answer.start(_headers(reader))
                    elif answer.client_left:
                        break  # the follower left
                    await answer.write(item)
    except api.LogLookupError as e:
        if answer.response is None:
            return json_error(e.status, str(e))
        with contextlib.suppress(ConnectionResetError):  # the file went away mid-stream
            await answer.write(api.Notice(f"the answer ended early: {e}"))
    except ConnectionResetError:
        pass  # the client left
    except api.UNREACHABLE as e:
        # Caught here, not by the error middleware, which would answer a started response again.
        if answer.response is None:
            return json_error(503, f"the cluster did not answer: {_reason(e)}")
        with contextlib.suppress(ConnectionResetError):
            await answer.write(api.Notice(f"the answer ended early: the node did not answer ({_reason(e)})"))
    return await answer.end()


def routes(gcs: GcsLink, follows: FollowSlots | None = None) -> list[Route]:
    # Reads of one node share a connection to it.
    pool = api.NodeConnections(gcs.node_credential, kind="dashboard")
    follows = follows or FollowSlots(MAX_FOLLOWS_PER_TOKEN, MAX_FOLLOWS)

    async def list_logs(request: web.Request) -> web.Response:
        return await _list(gcs, request)

    async def get_file(request: web.Request) -> web.StreamResponse:
        return await _read(gcs, pool, request, follow=False)

    async def stream_file(request: web.Request) -> web.StreamResponse:
        token_name = request.get("token_name", "")
        refused = follows.acquire(token_name)
        if refused is not None:
            return json_error(429, refused)
        try:
            return await _read(gcs, pool, request, follow=True)
        finally:
            follows.release(token_name)

    return [
        Route(
            "GET",
            "/api/v0/logs",
            list_logs,
            "A node's log files by category: ?node_id= or ?node_ip= (default: the head), ?glob=.",
            responses={
                200: "OK",
                400: "a bad node id",
                404: "no such node",
                503: "the cluster did not answer",
            },
        ),
        Route(
            "GET",
            "/api/v0/logs/file",
            get_file,
            "A log file's last ?lines= lines (default 1000, -1: all), as text: by ?filename= (and "
            "?node_id=/?node_ip=), ?actor_id=, ?task_id= (?attempt_number=), ?pid= or ?submission_id=; "
            "?suffix=err for a worker's stderr. X-Manta-Log-Lines and X-Manta-Log-Truncated say what "
            "it holds; a last line '--- manta: ... ---' says where it was cut.",
            responses=_FOUND,
        ),
        Route(
            "GET",
            "/api/v0/logs/stream",
            stream_file,
            f"As /api/v0/logs/file, then what is written to the file, until the client leaves or "
            f"{MAX_FOLLOW_S:g} s have passed; at most {MAX_FOLLOWS_PER_TOKEN} follows per token.",
            responses={**_FOUND, 429: "too many follows open"},
        ),
    ]
