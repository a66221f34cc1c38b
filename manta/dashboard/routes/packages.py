"""``/api/packages/``: runtime-env packages (a job's working_dir or py_modules, zipped by
the client) uploaded into the gcs, content-addressed, for nodes to fetch and unpack."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import zipfile

from aiohttp import web

from manta.dashboard.job_manager import JobManager
from manta.dashboard.routing import Route, json_error, json_response, read_body

# Ray's protocol name for packages kept by the cluster itself.
PROTOCOL = "gcs"
# Content-addressed names: the digest is checked against the bytes on upload.
_NAME = re.compile(r"_manta_pkg_([0-9a-f]{32})\.zip")
# Ray's own job client names packages by a hash of the files, not of the zip's bytes: taken
# as named (the uploader is trusted with the cluster's token anyway), so Ray's client works.
_RAY_NAME = re.compile(r"_ray_pkg_[0-9a-f]{16,64}\.zip")


def _check(request: web.Request) -> str | web.Response:
    protocol, name = request.match_info["protocol"], request.match_info["package_name"]
    if protocol != PROTOCOL:
        return json_error(400, f"unknown package protocol {protocol!r}; the only one is {PROTOCOL!r}")
    if not (_NAME.fullmatch(name) or _RAY_NAME.fullmatch(name)):
        return json_error(400, f"invalid package name {name!r}: expected _manta_pkg_<32 hex digits>.zip")
    return name


# Uploads held in memory at once; more wait their turn.
MAX_CONCURRENT_UPLOADS = 2


def routes(jobs: JobManager, max_bytes: int) -> list[Route]:
    uploads = asyncio.Semaphore(MAX_CONCURRENT_UPLOADS)

    async def package_exists(request: web.Request) -> web.Response:
        name = _check(request)
        if isinstance(name, web.Response):
            return name
        if await jobs.has_package(name):
            return json_response({"exists": True})
        return json_error(404, f"package {name} is not uploaded")

    async def upload_package(request: web.Request) -> web.Response:
        name = _check(request)
        if isinstance(name, web.Response):
            return name
        async with uploads:  # each upload is held in memory whole: a few at a time
            try:
                data = await read_body(request, max_bytes)
            except web.HTTPRequestEntityTooLarge:
                return json_error(
                    413,
                    f"the package is larger than the cluster's limit of {max_bytes:,} bytes; "
                    "leave large files out with runtime_env 'excludes' or a .gitignore",
                )
        match = _NAME.fullmatch(name)
        if match is not None and hashlib.sha256(data).hexdigest()[:32] != match.group(1):
            return json_error(400, f"the uploaded bytes do not match the digest in the name {name}")
        if not zipfile.is_zipfile(io.BytesIO(data)):
            return json_error(400, "the package is not a zip archive")
        await jobs.put_package(name, data)
        return json_response({"uploaded": name})

    path = "/api/packages/{protocol}/{package_name}"
    return [
        Route(
            "GET",
            path,
            package_exists,
            "Whether a package is uploaded.",
            responses={200: "OK", 404: "absent"},
        ),
        Route("PUT", path, upload_package, "Upload a package.", "submit", upload_limit=max_bytes),
    ]
