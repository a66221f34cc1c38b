"""The jobs service of the dashboard: job records in the gcs, one supervisor actor per
running job, and the entrypoint logs.

The dashboard process joins the cluster as a driver the first time it needs to (an idle
head pays nothing for it) and creates supervisors as detached actors. Records are kept in
the gcs key-value store, written by the supervisor as the job moves on, so they outlive
this process and, with persistent gcs storage, a gcs restart. This process only decides
what nobody else can: a supervisor that died, or a job that was stopped before it began.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from manta._private.common.runtime_env import PACKAGE_KV_NAMESPACE
from manta._private.common.session import ADDRESS_FILE, gcs_address_of, read_token
from manta.dashboard import job_state
from manta.dashboard.job_supervisor import (
    advance_record,
    kill_group,
    read_job_log,
    read_provenance,
    read_range,
    write_provenance,
)
from manta.job_submission.models import JobDetails, JobErrorType, JobInfo, JobStatus, JobType

logger = logging.getLogger("manta.dashboard")

# How long a small task on a job's node (reading its log, ending its processes) may take.
_REMOTE_LOG_TIMEOUT_S = 10.0
# How long a supervisor has to stop its entrypoint (it needs its grace period) before it
# is killed instead.
_STOP_TIMEOUT_S = 15.0


# How soon a job's record is asked for again when the gcs could not answer.
_RETRY_READ_S = 0.5


class JobError(Exception):
    """A request the jobs service refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class JobManager:
    def __init__(self, session_dir: str, start_timeout_s: float = 900.0) -> None:
        self._session_dir = session_dir
        self._start_timeout_s = start_timeout_s
        self._cluster_address = ""  # the gcs address the drivers of jobs join, once connected
        # Every call into the (blocking) driver API runs on this one thread, in order.
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="manta-jobs")
        self._connected = False
        self._head_node_id = ""
        self._watchers: dict[str, asyncio.Task[None]] = {}

    # -- the driver ----------------------------------------------------------------------
    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: self._connected_call(fn, *args, **kwargs))

    def _connected_call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._connected:
            import manta

            context = manta.init(
                address=self._session_dir,
                namespace=job_state.SUPERVISOR_NAMESPACE,
                configure_logging=False,
                log_to_driver=False,
            )
            self._head_node_id = context["node_id"]
            self._cluster_address = context["gcs_address"]
            self._connected = True
        return fn(*args, **kwargs)

    async def start(self) -> None:
        """Pick up the jobs that were running when this process started (after a restart
        of the head's dashboard): watch those whose supervisor lives, fail the others. A
        head with no job records (a new one) is not joined as a driver until needed."""
        if not await self._any_records():
            return
        for info in await self.list_records():
            sid = info.submission_id
            if not info.status.is_terminal() and sid and sid not in self._watchers:
                self._watchers[sid] = asyncio.ensure_future(self._rewatch(sid))

    async def _any_records(self) -> bool:
        from manta._private.common.config import Config
        from manta._private.rpc import messages as m
        from manta._private.rpc.endpoints import connect
        from manta._private.rpc.transport import Dispatcher

        with open(os.path.join(self._session_dir, ADDRESS_FILE)) as f:
            info = json.load(f)
        address = gcs_address_of(info)
        config = Config.from_env()
        conn = await connect(
            address,
            read_token(self._session_dir),
            Dispatcher(),
            kind="cli",
            max_frame_bytes=config.max_frame_bytes,
        )
        try:
            return bool(await conn.call(m.KvKeys(job_state.KV_NAMESPACE, b"")))
        finally:
            conn.close()

    async def close(self) -> None:
        for task in self._watchers.values():
            task.cancel()
        if self._connected:
            import manta

            await asyncio.get_running_loop().run_in_executor(self._pool, manta.shutdown)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- records -------------------------------------------------------------------------
    def _read(self, submission_id: str) -> JobInfo | None:
        from manta.experimental import internal_kv

        raw = internal_kv._internal_kv_get(
            job_state.record_key(submission_id), namespace=job_state.KV_NAMESPACE
        )
        return None if raw is None else JobInfo.from_json(json.loads(raw))

    def _write(self, submission_id: str, info: JobInfo, overwrite: bool = True) -> bool:
        from manta.experimental import internal_kv

        existed = internal_kv._internal_kv_put(
            job_state.record_key(submission_id),
            json.dumps(info.to_json()),
            overwrite,
            namespace=job_state.KV_NAMESPACE,
        )
        return overwrite or not existed

    async def get_provenance(self, submission_id: str) -> dict[str, Any]:
        """The provenance record of a submitted job (as JSON)."""
        await self.get(submission_id)  # a 404 for no such job
        provenance = await self._call(read_provenance, submission_id)
        if provenance is None:
            raise JobError(
                404,
                f"Job {submission_id} has no provenance record: it was submitted before the head kept one.",
            )
        return provenance.to_json()

    @staticmethod
    def _details(submission_id: str, info: JobInfo) -> JobDetails:
        return JobDetails(**{**vars(info), "submission_id": submission_id, "type": JobType.SUBMISSION})

    async def get(self, submission_id: str) -> JobDetails:
        info = await self._call(self._read, submission_id)
        if info is None:
            raise JobError(404, f"Job {submission_id} does not exist.")
        return self._details(submission_id, info)

    async def list_records(self) -> list[JobDetails]:
        """The submitted jobs (from their records)."""

        def read_all() -> list[JobDetails]:
            from manta.experimental import internal_kv

            out = []
            for key in internal_kv._internal_kv_list(b"", namespace=job_state.KV_NAMESPACE):
                info = self._read(key.decode())
                if info is not None:
                    out.append(self._details(key.decode(), info))
            return out

        return await self._call(read_all)  # type: ignore[no-any-return]

    async def list_all(self) -> list[JobDetails]:
        """Submitted jobs (with the ids of their drivers) and drivers started by hand."""
        submitted = {d.submission_id or "": d for d in await self.list_records()}
        return [*submitted.values(), *await self._drivers(submitted)]

    async def get_linked(self, job_id: str) -> JobDetails:
        """A submitted job by its submission id, with its driver's ids; or a driver's job
        by its job id (as Ray's API answers both)."""
        try:
            details = await self.get(job_id)
        except JobError:
            drivers = await self._drivers({})
            found = [d for d in drivers if d.job_id == job_id]
            if not found:
                raise
            return found[0]
        await self._drivers({job_id: details})
        return details

    async def _drivers_may_use_packages(self) -> bool:
        """Whether a running driver has packages of its own: drivers upload theirs by
        content too, so one may share a package with a job being deleted."""
        return any(
            d.status is JobStatus.RUNNING and job_state.uses_packages(d.runtime_env)
            for d in await self._drivers({})
        )

    async def _drivers(self, submitted: dict[str, JobDetails]) -> list[JobDetails]:
        from manta._private.api.context import require_initialized
        from manta._private.rpc import messages as m

        jobs = await self._call(lambda: require_initialized("listing jobs").call_gcs(m.GetAllJobs()))
        return [d for job in jobs if (d := job_state.driver_details(job, submitted)) is not None]

    # -- submit, stop, delete ------------------------------------------------------------
    async def submit(self, request: dict[str, Any], submitter: str, submitter_role: str) -> str:
        """Record and start a job; ``submitter`` is the name of the token that asked (with
        its role), kept in the job's provenance."""
        submission_id = request.get("submission_id") or job_state.new_submission_id()
        problem = job_state.check_submission_id(submission_id)
        if problem:
            raise JobError(400, problem)
        runtime_env = request.get("runtime_env")
        problem = job_state.check_remote_runtime_env(runtime_env)
        if problem:
            raise JobError(400, f"invalid runtime_env: {problem}")
        try:
            await self._call(_check_runtime_env, runtime_env)
        except (TypeError, ValueError, OSError) as e:
            raise JobError(400, f"invalid runtime_env: {e}") from None
        info = JobInfo(
            status=JobStatus.PENDING,
            entrypoint=request["entrypoint"],
            metadata=request.get("metadata") or {},
            runtime_env=runtime_env,
            entrypoint_num_cpus=request.get("entrypoint_num_cpus"),
            entrypoint_num_gpus=request.get("entrypoint_num_gpus"),
            entrypoint_memory=request.get("entrypoint_memory"),
            entrypoint_resources=request.get("entrypoint_resources"),
        )
        info.message = job_state.pending_message(info)
        if not await self._call(self._write, submission_id, info, False):
            raise JobError(409, f"Job with submission_id {submission_id} already exists. Choose another id.")
        provenance = job_state.provenance_at_submit(
            submission_id, info, submitter, submitter_role, int(time.time() * 1000)
        )
        await self._call(write_provenance, submission_id, provenance)
        try:
            handle, run_ref = await self._call(self._launch, submission_id, info)
        except Exception as e:
            await self._call(
                advance_record,
                submission_id,
                JobStatus.FAILED,
                message=f"Failed to start the job's supervisor: {e}",
                error_type=JobErrorType.JOB_SUPERVISOR_ACTOR_START_FAILURE.value,
            )
            return submission_id
        self._watchers[submission_id] = asyncio.ensure_future(self._watch(submission_id, handle, run_ref))
        return submission_id

    def _launch(self, submission_id: str, info: JobInfo) -> tuple[Any, Any]:
        import manta
        from manta.dashboard.job_supervisor import JobSupervisor

        options = job_state.supervisor_options(info, submission_id, self._head_node_id)
        supervisor = manta.remote(JobSupervisor).options(**options)
        handle = supervisor.remote(submission_id, info.entrypoint, self._cluster_address)
        return handle, handle.run.remote(info.runtime_env)

    async def _watch(self, submission_id: str, handle: Any, done: Any) -> None:
        """Wait for the supervisor's ``run`` to end; if it ends by the supervisor's death
        (or its runtime environment failing), the job failed for that reason."""
        from manta.exceptions import RayActorError, RuntimeEnvSetupError

        changes: dict[str, Any] | None = None
        ended = asyncio.ensure_future(_awaited(done))
        try:
            if not await self._started_in_time(submission_id, ended):
                ended.cancel()
                changes = {
                    "message": f"Job did not start within {self._start_timeout_s:g} s: no node could give it "
                    "the resources it asked for, or its runtime environment took too long to set up.",
                    "error_type": JobErrorType.JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE.value,
                }
            else:
                await ended
        except RuntimeEnvSetupError as e:
            changes = {
                "message": f"Failed to set up the runtime environment:\n{e}",
                "error_type": JobErrorType.RUNTIME_ENV_SETUP_FAILURE.value,
            }
        except RayActorError as e:
            changes = {
                "message": f"Job supervisor actor died: {e}",
                "error_type": JobErrorType.JOB_SUPERVISOR_ACTOR_DIED.value,
            }
        except asyncio.CancelledError:
            ended.cancel()
            return
        except Exception as e:
            changes = {"message": f"Job supervisor failed: {e}"}
        if changes is not None:
            await self._call(advance_record, submission_id, JobStatus.FAILED, **changes)
        self._watchers.pop(submission_id, None)
        await self._call(_kill_quietly, handle)
        if changes is not None:  # its supervisor is gone: end what it had started
            await self._end_processes(submission_id)

    async def _end_processes(self, submission_id: str) -> None:
        """Kill what is left of a job's entrypoint, on its node, and forget where it was."""
        from manta.experimental import internal_kv

        raw = await self._call(
            internal_kv._internal_kv_get, submission_id, namespace=job_state.GROUPS_NAMESPACE
        )
        if raw is None:
            return
        group = job_state.ProcessGroup.from_json(raw)
        if group.node_id == self._head_node_id:
            kill_group(group)
        else:
            try:
                await asyncio.wait_for(
                    await self._call(_on_node, kill_group, group.node_id, group), _REMOTE_LOG_TIMEOUT_S
                )
            except Exception as e:  # the node is gone, and its processes with it
                logger.info(
                    "could not end job %s's processes on node %s: %s", submission_id, group.node_id, e
                )
        await self._call(internal_kv._internal_kv_del, submission_id, namespace=job_state.GROUPS_NAMESPACE)

    async def _started_in_time(self, submission_id: str, ended: asyncio.Future[Any]) -> bool:
        """False when the job is still PENDING after the start timeout (Ray fails such a
        job rather than let it wait for resources for ever)."""
        await asyncio.wait({ended}, timeout=self._start_timeout_s)
        while not ended.done():
            try:
                info = await self._call(self._read, submission_id)
            except Exception as e:  # the gcs is restarting: its record is asked for again
                logger.info("cannot read job %s's record yet: %s", submission_id, e)
                await asyncio.wait({ended}, timeout=_RETRY_READ_S)
                continue
            return info is None or info.status is not JobStatus.PENDING
        return True

    async def _rewatch(self, submission_id: str) -> None:
        handle = await self._call(_find_supervisor, submission_id)
        if handle is None:
            await self._call(
                advance_record,
                submission_id,
                JobStatus.FAILED,
                message="Job supervisor actor is gone: it ended while the dashboard was down.",
                error_type=JobErrorType.JOB_SUPERVISOR_ACTOR_DIED.value,
            )
            return
        await self._watch(submission_id, handle, await self._call(lambda: handle.wait.remote()))

    async def stop(self, submission_id: str) -> bool:
        """Stop a job; False when it had already ended."""
        status = (await self.get(submission_id)).status
        if status.is_terminal():
            return False
        handle = await self._call(_find_supervisor, submission_id)
        stopped = False
        if handle is not None and status is JobStatus.RUNNING:
            try:
                ref = await self._call(lambda: handle.stop.remote())
                stopped = await asyncio.wait_for(ref, _STOP_TIMEOUT_S)
            except Exception as e:  # the supervisor died meanwhile, or does not answer
                logger.warning("job %s: its supervisor did not stop it (%s); killing it", submission_id, e)
        if not stopped:
            # Not started yet (its supervisor is still being placed or set up), or the
            # supervisor is unresponsive: end it, entrypoint included (it dies with it).
            await self._call(
                advance_record, submission_id, JobStatus.STOPPED, message="Job was intentionally stopped."
            )
            if handle is not None:
                await self._call(_kill_quietly, handle)
            await self._end_processes(submission_id)
        return True

    async def delete(self, submission_id: str) -> bool:
        """Forget an ended job: its record, its provenance and its log."""
        from manta.experimental import internal_kv

        info = await self.get(submission_id)
        if not info.status.is_terminal():
            raise JobError(
                400,
                f"Job {submission_id} is still {info.status.value}; stop it before deleting it "
                "(only a job in a terminal state can be deleted).",
            )
        # The provenance first: a failure between the two leaves the job's record, which can
        # be deleted again; a provenance left alone would be an orphan that nothing shows.
        for namespace in (job_state.PROVENANCE_NAMESPACE, job_state.KV_NAMESPACE):
            await self._call(
                internal_kv._internal_kv_del, job_state.record_key(submission_id), namespace=namespace
            )
        # A running driver that ships code of its own may share a package (drivers upload
        # by content too): then the packages wait for a later delete.
        if not await self._drivers_may_use_packages():
            remaining = [d.runtime_env for d in await self.list_records()]
            for uri in job_state.unused_packages(info.runtime_env, remaining):
                await self._call(
                    internal_kv._internal_kv_del, uri.split("://", 1)[1], namespace=PACKAGE_KV_NAMESPACE
                )
        try:
            os.unlink(self._local_log(submission_id))
        except OSError:
            pass
        return True

    # -- runtime-env packages ------------------------------------------------------------
    async def has_package(self, name: str) -> bool:
        from manta.experimental import internal_kv

        return await self._call(internal_kv._internal_kv_exists, name, namespace=PACKAGE_KV_NAMESPACE)  # type: ignore[no-any-return]

    async def put_package(self, name: str, data: bytes) -> None:
        from manta.experimental import internal_kv

        await self._call(internal_kv._internal_kv_put, name, data, False, namespace=PACKAGE_KV_NAMESPACE)

    # -- logs ----------------------------------------------------------------------------
    def _local_log(self, submission_id: str) -> str:
        return os.path.join(self._session_dir, "logs", job_state.log_name(submission_id))

    async def read_log(self, details: JobDetails, offset: int, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of the job's log from ``offset``: read here when the job ran
        on the head, else by a small task on the job's node (its supervisor may be gone)."""
        assert details.submission_id is not None
        node = details.driver_node_id
        if node is None or node == self._head_node_id:
            return read_range(self._local_log(details.submission_id), offset, max_bytes)
        ref = await self._call(_on_node, read_job_log, node, details.submission_id, offset, max_bytes)
        try:
            return await asyncio.wait_for(ref, _REMOTE_LOG_TIMEOUT_S)  # type: ignore[no-any-return]
        except Exception as e:  # the node is gone
            logger.info("could not read the log of job %s on node %s: %s", details.submission_id, node, e)
            return b""

    async def read_tail(self, details: JobDetails, max_bytes: int, chunk: int) -> tuple[bytes, int]:
        """The last ``max_bytes`` of the job's log (its end is what matters), and how many
        bytes before them were left out."""
        kept: list[bytes] = []
        offset = size = 0
        while data := await self.read_log(details, offset, chunk):
            offset += len(data)
            kept.append(data)
            size += len(data)
            while size - len(kept[0]) >= max_bytes:
                size -= len(kept.pop(0))
        text = b"".join(kept)
        omitted = offset - len(text)
        if len(text) > max_bytes:
            omitted += len(text) - max_bytes
            text = text[-max_bytes:]
        return text, omitted


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _check_runtime_env(runtime_env: Any) -> None:
    from manta._private.runtime_env.validation import validate_runtime_env

    validate_runtime_env(runtime_env)


def _find_supervisor(submission_id: str) -> Any:
    import manta

    try:
        return manta.get_actor(
            job_state.supervisor_name(submission_id), namespace=job_state.SUPERVISOR_NAMESPACE
        )
    except ValueError:
        return None


def _on_node(fn: Any, node_id: str, *args: Any) -> Any:
    """Run ``fn(*args)`` as a 0-CPU task on the node ``node_id`` (where a job's files and
    processes are)."""
    import manta
    from manta.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    strategy = NodeAffinitySchedulingStrategy(node_id, soft=False)
    return manta.remote(fn).options(num_cpus=0, scheduling_strategy=strategy, max_retries=0).remote(*args)


def _kill_quietly(handle: Any) -> None:
    import manta

    try:
        manta.kill(handle)
    except Exception as e:  # already gone
        logger.debug("killing a job supervisor: %s", e)
