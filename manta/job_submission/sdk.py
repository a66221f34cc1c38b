"""``JobSubmissionClient``: Ray's job client, speaking to the head's jobs API over HTTP.

Plain requests go through the standard library (``urllib.request``), so the client needs
nothing beyond Manta's own dependencies; following a log uses an aiohttp websocket.

Where the cluster is, in order: the ``address`` argument, ``MANTA_ADDRESS``,
``RAY_API_SERVER_ADDRESS``, ``RAY_ADDRESS``, else the dashboard of the newest cluster
running on this host. An address may be the dashboard's (``http://host:port`` or
``host:port``) or, for a cluster on this host, its gcs address, which is how a job's own
entrypoint (started with ``MANTA_ADDRESS`` set to the gcs) finds the dashboard.

The bearer token, in order: an ``Authorization`` entry of ``headers``,
``MANTA_AUTH_TOKEN``, else the token file of the session on this host that serves the
address. Ray's dashboard has no token; Manta's refuses every request without one.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

from manta.job_submission.models import JobDetails, JobStatus

# Long enough for a first submission, which connects the head's job service to the
# cluster and uploads nothing; package uploads get their own, longer limit.
_REQUEST_TIMEOUT_S = 60.0
_UPLOAD_TIMEOUT_S = 600.0
# Hosts that all mean "this machine" when matching an address against local sessions.
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "0.0.0.0", "::1", "::", ""})
_HOW_TO_SET = (
    "pass the head's dashboard address (http://HOST:PORT, printed by `manta start --head`) "
    "as address=... or --address, or set MANTA_ADDRESS"
)


class SubmissionClient:
    """An authenticated client of the head's HTTP service (the base of
    ``JobSubmissionClient``, as in Ray): finds the address and the token, checks the
    server's version on creation, and sends JSON requests.

    Args:
        address: The head's dashboard, ``http://host:port`` (``host:port`` means http);
            see the module docstring for what is used when it is None or ``"auto"``.
        create_cluster_if_needed: Accepted for Ray compatibility; as in Ray, no cluster is
            started by the client.
        cookies: Cookies sent with every request.
        headers: HTTP headers sent with every request; an ``Authorization`` entry here
            replaces the cluster token.
        verify: For https: False skips certificate checks, a string is a CA bundle path.

    Raises:
        ConnectionError: Nothing answers at the address, or no address was found.
        RuntimeError: The server refused the version check (a missing or wrong token).
    """

    def __init__(
        self,
        address: str | None = None,
        create_cluster_if_needed: bool = False,
        cookies: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        verify: str | bool | None = True,
    ) -> None:
        for name, value in (("cookies", cookies), ("headers", headers)):
            if value is not None and not isinstance(value, dict):
                raise TypeError(f"{name} must be a dict, got {type(value).__name__}")
        if address is not None and not isinstance(address, str):
            raise TypeError(f"address must be a string, got {type(address).__name__}")
        self._address, session_dir = _resolve_address(address)
        self._cookies = {str(k): str(v) for k, v in (cookies or {}).items()}
        self._headers = {str(k): str(v) for k, v in (headers or {}).items()}
        if not any(k.lower() == "authorization" for k in self._headers):
            token = _find_token(session_dir)
            if token:
                self._headers["Authorization"] = f"Bearer {token}"
        self._ssl = _ssl_context(verify)
        # Checked now, as Ray does, so a wrong address or token fails here and not later.
        self._server_version = str(self._get("/api/version").get("version", ""))

    @property
    def address(self) -> str:
        """The dashboard this client talks to (``http://host:port``)."""
        return self._address

    def get_version(self) -> str:
        """The version of the server's API."""
        return self._server_version

    def get_address(self) -> str:
        """The base url of the server this client talks to."""
        return self._address

    # -- HTTP -------------------------------------------------------------------------------
    def _get(self, path: str) -> Any:
        return self._request_json("GET", path)

    def _request_json(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        status, reply = self._send(method, path, data, "application/json")
        if not 200 <= status < 300:
            raise RuntimeError(_failure(method, path, status, reply))
        try:
            return json.loads(reply)
        except ValueError:
            raise RuntimeError(
                f"{method} {path} answered status {status} with a body that is not JSON: {reply[:200]!r}"
            ) from None

    def _send(
        self,
        method: str,
        path: str,
        data: bytes | None = None,
        content_type: str | None = None,
        timeout: float = _REQUEST_TIMEOUT_S,
    ) -> tuple[int, bytes]:
        """Status and body of one request; a refusal (4xx/5xx) is returned, not raised."""
        headers = dict(self._headers)
        if self._cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self._cookies.items())
        if data is not None and content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self._address + path, data=data, headers=headers, method=method)
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=self._ssl), _RefuseRedirects)
        try:
            with opener.open(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            with e:
                return e.code, e.read()
        except (urllib.error.URLError, OSError) as e:
            raise _unreachable(self._address, e) from None


class JobSubmissionClient(SubmissionClient):
    """Submit and manage jobs on a Manta cluster (Ray's ``JobSubmissionClient``).

    Args:
        address, create_cluster_if_needed, cookies, headers, verify: as for
            ``SubmissionClient``.
        metadata: Labels added to every job this client submits (a job's own win).

    Raises:
        ConnectionError: Nothing answers at the address, or no address was found.
        RuntimeError: The server refused the version check (a missing or wrong token).
    """

    def __init__(
        self,
        address: str | None = None,
        create_cluster_if_needed: bool = False,
        cookies: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        verify: str | bool | None = True,
    ) -> None:
        if metadata is not None and not isinstance(metadata, dict):
            raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
        super().__init__(address, create_cluster_if_needed, cookies, headers, verify)
        self._default_metadata = {str(k): str(v) for k, v in (metadata or {}).items()}

    # -- jobs -------------------------------------------------------------------------------
    def submit_job(
        self,
        *,
        entrypoint: str,
        job_id: str | None = None,
        runtime_env: dict[str, Any] | None = None,
        metadata: dict[str, str] | None = None,
        submission_id: str | None = None,
        entrypoint_num_cpus: int | float | None = None,
        entrypoint_num_gpus: int | float | None = None,
        entrypoint_memory: int | None = None,
        entrypoint_resources: dict[str, float] | None = None,
    ) -> str:
        """Submit ``entrypoint`` (a shell command) to run on the cluster; returns its
        submission id. A local ``working_dir`` or ``py_modules`` directory (or .zip) of
        ``runtime_env`` is zipped, honouring ``runtime_env["excludes"]`` and .gitignore
        files, uploaded unless the cluster has it already, and sent as its gcs:// uri.

        Raises:
            ValueError: Both ``job_id`` (the deprecated spelling) and ``submission_id``
                given, or a local package path that is not a directory or .zip file
                (``PackageTooLargeError``, a ValueError, when it is over the size limit).
            RuntimeError: The server refused the job (409: the id is taken; 400: bad input).
        """
        if job_id is not None:
            if submission_id is not None:
                raise ValueError("give submission_id only; job_id is its deprecated spelling")
            submission_id = job_id
        if runtime_env is not None and not isinstance(runtime_env, dict):
            raise TypeError(f"runtime_env must be a dict, got {type(runtime_env).__name__}")
        body: dict[str, Any] = {
            "entrypoint": entrypoint,
            "submission_id": submission_id,
            "runtime_env": self._resolve_runtime_env(runtime_env),
            "metadata": {**self._default_metadata, **(metadata or {})},
            "entrypoint_num_cpus": entrypoint_num_cpus,
            "entrypoint_num_gpus": entrypoint_num_gpus,
            "entrypoint_memory": entrypoint_memory,
            "entrypoint_resources": entrypoint_resources,
        }
        reply = self._request_json("POST", "/api/jobs/", {k: v for k, v in body.items() if v is not None})
        return str(reply["submission_id"])

    def stop_job(self, job_id: str) -> bool:
        """Stop a job (SIGTERM to its process tree, SIGKILL after a grace period); False if
        it had already ended. RuntimeError if there is no such job."""
        return bool(self._request_json("POST", f"{_job_path(job_id)}/stop")["stopped"])

    def delete_job(self, job_id: str) -> bool:
        """Forget an ended job: its record and its log. RuntimeError if there is no such
        job or it has not ended."""
        return bool(self._request_json("DELETE", _job_path(job_id))["deleted"])

    def get_job_info(self, job_id: str) -> JobDetails:
        """The job's details (status, message, times, entrypoint, ...)."""
        return _details(self._get(_job_path(job_id)))

    def list_jobs(self) -> list[JobDetails]:
        """Every job the cluster knows: those submitted through this API, and drivers
        started by hand (``type`` DRIVER), as Ray lists them."""
        return [_details(d) for d in self._get("/api/jobs/")]

    def get_job_provenance(self, job_id: str) -> dict[str, Any]:
        """The provenance record of a submitted job (a Manta extension; Ray's client has
        no such call): ``submission_id``, ``entrypoint``, ``runtime_env`` as submitted,
        ``submitter`` (the name of the token that submitted it) and ``submitter_role``;
        ``manta_version``, ``python_version``, ``packages_hash`` (SHA-256 over the sorted
        ``name==version`` lines of the entrypoint's installed distributions) and
        ``packages_count``; the ``entrypoint_*`` resources requested; ``cpu_seconds`` and
        ``peak_memory_bytes`` consumed by the entrypoint's process tree; ``nodes_used``;
        ``submit_time``, ``start_time``, ``end_time`` (Unix ms), ``status``, ``exit_code``
        and ``log_path`` (``{"node_id", "path"}``). Fields not known yet are None.

        Raises:
            RuntimeError: There is no such job (404), or it was submitted before the head
                kept provenance records.
        """
        return dict(self._get(f"{_job_path(job_id)}/provenance"))

    def get_job_status(self, job_id: str) -> JobStatus:
        return self.get_job_info(job_id).status

    def get_job_logs(self, job_id: str) -> str:
        """The job's output (stdout and stderr together) so far."""
        return str(self._get(f"{_job_path(job_id)}/logs")["logs"])

    async def tail_job_logs(self, job_id: str) -> AsyncIterator[str]:
        """The job's output as it is written, in chunks of text; ends once the job has
        ended and all of its output was yielded."""
        import aiohttp

        path = f"{_job_path(job_id)}/logs/tail"
        url = self._address.replace("http", "ws", 1) + path
        ssl_arg: Any = self._ssl if self._ssl is not None else True
        async with aiohttp.ClientSession(headers=self._headers, cookies=self._cookies) as session:
            try:
                ws = await session.ws_connect(url, ssl=ssl_arg, autoping=True)
            except aiohttp.WSServerHandshakeError as e:
                raise RuntimeError(await _refusal(session, self._address + path, e.status, ssl_arg)) from None
            except aiohttp.ClientConnectionError as e:
                raise _unreachable(self._address, e) from None
            async with ws:
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        yield msg.data
                    elif msg.type == aiohttp.WSMsgType.ERROR:
                        raise RuntimeError(f"the log stream of job {job_id} failed: {ws.exception()}")

    # -- runtime-env packages ---------------------------------------------------------------
    def _resolve_runtime_env(self, runtime_env: dict[str, Any] | None) -> dict[str, Any] | None:
        from manta._private.runtime_env.resolve import resolve

        return resolve(runtime_env, self._has_package, self._upload_package)

    @staticmethod
    def _package_path(uri: str) -> str:
        return "/api/packages/" + uri.replace("://", "/", 1)

    def _has_package(self, uri: str) -> bool:
        path = self._package_path(uri)
        status, reply = self._send("GET", path)
        if status not in (200, 404):
            raise RuntimeError(_failure("GET", path, status, reply))
        return status == 200

    def _upload_package(self, uri: str, data: bytes) -> None:
        path = self._package_path(uri)
        status, reply = self._send("PUT", path, data, "application/zip", timeout=_UPLOAD_TIMEOUT_S)
        if not 200 <= status < 300:
            raise RuntimeError(_failure("PUT", path, status, reply))


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as the error it is here: following it would send the
    cluster token to wherever it points (urllib keeps the Authorization header)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# -- where the cluster is ------------------------------------------------------------------


def _resolve_address(address: str | None) -> tuple[str, str | None]:
    """The dashboard's base url, and the local session directory serving it (if any)."""
    from manta._private.common.config import Config, ray_jobs_address

    if address in (None, "", "auto"):
        address = Config.from_env().address or ray_jobs_address()
    if address in ("", "auto", "local"):
        return _local_dashboard()
    assert address is not None
    url = _normalize(address)
    endpoint = _endpoint(url)
    from manta._private.api.discovery import running_sessions

    sessions = list(running_sessions(Config.from_env()))
    for session_dir, info in sessions:
        if _same_endpoint(endpoint, _endpoint("http://" + info.get("dashboard_url", ""))):
            return url, session_dir
    # A gcs address of a cluster on this host: its dashboard is in the same address file.
    for session_dir, info in sessions:
        if info.get("dashboard_url") and _same_endpoint(
            endpoint, _endpoint("http://" + info.get("gcs_address", ""))
        ):
            return _normalize(info["dashboard_url"]), session_dir
    return url, None


def _normalize(address: str) -> str:
    address = address.strip().rstrip("/")
    scheme, sep, _ = address.partition("://")
    if not sep:
        from manta._private.rpc import tls

        return ("https://" if tls.current() is not None else "http://") + address
    if scheme not in ("http", "https"):
        raise ValueError(
            f"the jobs API is served over http or https, so address {address!r} cannot be used; "
            "give the head's dashboard address as http://HOST:PORT"
        )
    return address


def _endpoint(url: str) -> tuple[str, int | None]:
    try:
        parts = urllib.parse.urlsplit(url)
        return parts.hostname or "", parts.port
    except ValueError:
        return "", None


def _same_endpoint(a: tuple[str, int | None], b: tuple[str, int | None]) -> bool:
    if a[1] is None or a[1] != b[1]:
        return False
    return a[0] == b[0] or (a[0] in _LOCAL_HOSTS and b[0] in _LOCAL_HOSTS)


def _local_dashboard() -> tuple[str, str]:
    from manta._private.api.discovery import latest_cluster, running_sessions
    from manta._private.common.config import Config

    config = Config.from_env()
    session_dir = latest_cluster(config)
    if session_dir is None:
        raise ConnectionError(f"no Manta cluster is running on this host to submit jobs to; {_HOW_TO_SET}")
    url = dict(running_sessions(config)).get(session_dir, {}).get("dashboard_url")
    if not url:
        raise ConnectionError(
            f"the Manta cluster running on this host ({session_dir}) has no dashboard: start it "
            f"with `manta start --head` (or init(include_dashboard=True)), or {_HOW_TO_SET}"
        )
    return _normalize(url), session_dir


def _find_token(session_dir: str | None) -> str:
    from manta._private.common.config import Config
    from manta._private.common.session import read_token

    token = Config.from_env().auth_token.strip()
    if token or session_dir is None:
        return token
    try:
        return read_token(session_dir).decode().strip()
    except OSError:
        return ""


def _ssl_context(verify: str | bool | None) -> ssl.SSLContext | None:
    """How https is checked: as ``verify`` says; with the cluster's TLS settings in this
    process (MANTA_TLS_*), the server is checked against the cluster CA and this process's
    certificate is presented (the cluster's mutual TLS)."""
    from manta._private.rpc import tls

    settings = tls.current()
    if verify is None or verify is True:
        return None if settings is None else settings.client
    if not isinstance(verify, (bool, str)):
        raise TypeError(f"verify must be a bool or a CA bundle path, got {type(verify).__name__}")
    context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
    if verify is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if settings is not None:
        context.load_cert_chain(settings.files[1], settings.files[2])
    return context


def _details(data: dict[str, Any]) -> JobDetails:
    details = JobDetails.from_json(data)
    assert isinstance(details, JobDetails)
    return details


# -- errors --------------------------------------------------------------------------------


def _job_path(job_id: str) -> str:
    if not isinstance(job_id, str):
        raise TypeError(f"job_id must be a string, got {type(job_id).__name__}")
    return "/api/jobs/" + urllib.parse.quote(job_id, safe="")


def _failure(method: str, path: str, status: int, body: bytes) -> str:
    try:
        reason = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        reason = body.decode(errors="replace").strip()[:500] or "(no reason given)"
    return f"Request {method} {path} failed with status code {status}: {reason}"


def _unreachable(address: str, error: BaseException) -> ConnectionError:
    reason = getattr(error, "reason", None) or error
    return ConnectionError(f"could not reach the Manta jobs API at {address} ({reason}); {_HOW_TO_SET}")


async def _refusal(session: Any, url: str, status: int, ssl_arg: Any) -> str:
    """Why a websocket was refused: the handshake error has no body, so ask once more
    without upgrading and read the server's JSON error (a known job answers 400 to that)."""
    path = urllib.parse.urlsplit(url).path
    try:
        async with session.get(url, ssl=ssl_arg) as response:
            if response.status == status:
                return _failure("GET", path, status, await response.read())
    except Exception:  # the first status is the answer; this was only for its reason
        pass
    return f"Request GET {path} failed with status code {status}"
