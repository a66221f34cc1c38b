"""``/api/jobs/``: submit, list, inspect, follow, stop and delete jobs (Ray's paths and
shapes, so Ray's own job client works against it too), and a job's provenance (Manta's
own path: who submitted it, what it ran on, what it consumed)."""

from __future__ import annotations

import asyncio
import codecs

from aiohttp import WSMsgType, web

from manta.dashboard.job_manager import JobError, JobManager
from manta.dashboard.routing import Audit, Field, Route, caller, json_error, json_response, read_json

SUBMIT_FIELDS = (
    Field(
        "entrypoint", "string", "the shell command that runs the job's driver", required=True, nullable=False
    ),
    Field("submission_id", "string", "the job's id (default: a new unique one)"),
    Field("job_id", "string", "deprecated spelling of submission_id"),
    Field("runtime_env", "object", "the job's runtime environment (working_dir, pip, env_vars, ...)"),
    Field("metadata", "object", "free-form string labels of the job", values="string"),
    Field("entrypoint_num_cpus", "number", "CPUs reserved for the entrypoint", minimum=0),
    Field("entrypoint_num_gpus", "number", "GPUs reserved for the entrypoint", minimum=0),
    Field("entrypoint_memory", "integer", "memory (bytes) reserved for the entrypoint", minimum=0),
    Field("entrypoint_resources", "object", "custom resources reserved for the entrypoint", values="number"),
)

# How much of a log one request returns, and how often a follower looks for more.
MAX_LOG_BYTES = 64 << 20
TAIL_CHUNK = 1 << 20
TAIL_POLL_S = 0.2


def _error(e: JobError) -> web.Response:
    return json_error(e.status, str(e))


class _JobRoutes:
    """The handlers, around the job manager they act on."""

    def __init__(self, jobs: JobManager, audit: Audit) -> None:
        self.jobs = jobs
        self.audit = audit

    async def submit_job(self, request: web.Request) -> web.Response:
        body = await read_json(request, SUBMIT_FIELDS)
        body["submission_id"] = body["submission_id"] or body.pop("job_id")
        if not body["entrypoint"].strip():
            return json_error(400, "entrypoint must be a non-empty shell command")
        try:
            submission_id = await self.jobs.submit(body, request["token_name"], request["role"])
        except JobError as e:
            return _error(e)
        self.audit(
            "job_submit",
            **caller(request),
            submission_id=submission_id,
            entrypoint=body["entrypoint"][:1000],
            runtime_env=body["runtime_env"],
        )
        return json_response({"submission_id": submission_id, "job_id": submission_id})

    async def list_jobs(self, request: web.Request) -> web.Response:
        return json_response([d.to_json() for d in await self.jobs.list_all()])

    async def get_job_info(self, request: web.Request) -> web.Response:
        try:
            return json_response((await self.jobs.get_linked(request.match_info["job_id"])).to_json())
        except JobError as e:
            return _error(e)

    async def get_job_provenance(self, request: web.Request) -> web.Response:
        try:
            return json_response(await self.jobs.get_provenance(request.match_info["job_id"]))
        except JobError as e:
            return _error(e)

    async def get_job_logs(self, request: web.Request) -> web.Response:
        try:
            details = await self.jobs.get(request.match_info["job_id"])
        except JobError as e:
            return _error(e)
        data, omitted = await self.jobs.read_tail(details, MAX_LOG_BYTES, TAIL_CHUNK)
        text = data.decode(errors="replace")
        if omitted:
            text = (
                f"[the first {omitted:,} bytes of this log are left out; the file is on the job's node]\n"
                + text
            )
        return json_response({"logs": text})

    async def tail_job_logs(self, request: web.Request) -> web.StreamResponse:
        try:
            details = await self.jobs.get(request.match_info["job_id"])
        except JobError as e:
            return _error(e)
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        offset = 0
        # Chunks may end inside a character: decode across them.
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        # A follower that goes away is noticed by the reader task; the loop then ends.
        reader = asyncio.ensure_future(ws.receive())
        try:
            while not ws.closed:
                chunk = await self.jobs.read_log(details, offset, TAIL_CHUNK)
                if chunk:
                    offset += len(chunk)
                    text = decoder.decode(chunk)
                    if text:
                        await ws.send_str(text)
                    continue
                if details.status.is_terminal():
                    break
                done, _ = await asyncio.wait({reader}, timeout=TAIL_POLL_S)
                if done and reader.result().type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
                if done:
                    reader = asyncio.ensure_future(ws.receive())
                details = await self.jobs.get(details.submission_id or "")
        except (ConnectionResetError, JobError):
            pass
        finally:
            reader.cancel()
            await ws.close()
        return ws

    async def stop_job(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        try:
            stopped = await self.jobs.stop(job_id)
        except JobError as e:
            return _error(e)
        self.audit("job_stop", **caller(request), submission_id=job_id, stopped=stopped)
        return json_response({"stopped": stopped})

    async def delete_job(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        try:
            deleted = await self.jobs.delete(job_id)
        except JobError as e:
            return _error(e)
        self.audit("job_delete", **caller(request), submission_id=job_id, deleted=deleted)
        return json_response({"deleted": deleted})


def routes(jobs: JobManager, audit: Audit) -> list[Route]:
    h = _JobRoutes(jobs, audit)
    found = {200: "OK", 404: "no such job"}
    return [
        Route(
            "POST",
            "/api/jobs/",
            h.submit_job,
            "Submit a job.",
            "submit",
            SUBMIT_FIELDS,
            {200: "OK", 409: "id taken"},
        ),
        Route("GET", "/api/jobs/", h.list_jobs, "List jobs."),
        Route("GET", "/api/jobs/{job_id}", h.get_job_info, "A job's details.", responses=found),
        Route(
            "GET",
            "/api/jobs/{job_id}/provenance",
            h.get_job_provenance,
            "Who submitted a job, what it ran on and what it consumed.",
            responses=found,
        ),
        Route("GET", "/api/jobs/{job_id}/logs", h.get_job_logs, "A job's log so far.", responses=found),
        Route("GET", "/api/jobs/{job_id}/logs/tail", h.tail_job_logs, "Follow a job's log.", websocket=True),
        Route("POST", "/api/jobs/{job_id}/stop", h.stop_job, "Stop a job.", "submit", responses=found),
        Route(
            "DELETE", "/api/jobs/{job_id}", h.delete_job, "Delete an ended job.", "submit", responses=found
        ),
    ]
