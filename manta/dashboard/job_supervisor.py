"""The supervisor of one submitted job: an actor that runs the entrypoint as a child
process, writes its output to a log file on its node, and records the job's status.

It is created with the job's entrypoint resources and runtime environment, so the node
has set that environment up (working_dir unpacked and made the current directory,
env_vars set, a pip venv active) before ``run`` starts the entrypoint in it. Its status
writes go straight to the gcs, so a job's record stays right whatever happens to the
dashboard process that asked for it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from typing import Any

import psutil

from manta._private.common.pdeathsig import die_with_parent
from manta.dashboard import job_state
from manta.job_submission.models import JobErrorType, JobInfo, JobStatus

# How long a stopped entrypoint has between SIGTERM and SIGKILL (Ray's default).
STOP_GRACE_S = 3.0


def entrypoint_env(
    base: dict[str, str],
    node_session_dir: str,
    cluster_address: str,
    submission_id: str,
    runtime_env: dict[str, Any] | None,
) -> dict[str, str]:
    """The entrypoint's environment: the supervisor's (with the runtime env applied),
    plus where the cluster is, so its ``init()`` joins it with no address given, through
    the node it runs on."""
    env = dict(base)
    env.pop("OMP_NUM_THREADS", None)  # set for the supervisor's own (0-CPU) task, not the job's
    env["MANTA_ADDRESS"] = cluster_address
    env["RAY_ADDRESS"] = cluster_address
    env["MANTA_NODE_SESSION_DIR"] = node_session_dir
    env["MANTA_JOB_SUBMISSION_ID"] = submission_id  # recorded with its driver's job
    env["MANTA_JOB_RUNTIME_ENV"] = json.dumps(runtime_env or {})
    env["PYTHONUNBUFFERED"] = "1"  # so its log follows as lines are printed
    return env


def advance_record(submission_id: str, status: JobStatus, **changes: Any) -> bool:
    """Move the job's record to ``status`` (in the gcs); False when it may not (it ended
    already, or was deleted). The supervisor and the dashboard both change records so."""
    from manta.experimental import internal_kv

    key = job_state.record_key(submission_id)
    raw = internal_kv._internal_kv_get(key, namespace=job_state.KV_NAMESPACE)
    if raw is None:  # deleted meanwhile: nothing to record
        return False
    new = job_state.advance(JobInfo.from_json(json.loads(raw)), status, int(time.time() * 1000), **changes)
    if new is None:
        return False
    internal_kv._internal_kv_put(key, json.dumps(new.to_json()), namespace=job_state.KV_NAMESPACE)
    return True


def _tail(path: str, chars: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(os.path.getsize(path) - chars, 0))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _log_path(submission_id: str) -> str:
    from manta._private.api.context import require_initialized

    session_dir = require_initialized("reading a job's log").session.session_dir
    return os.path.join(session_dir, "logs", job_state.log_name(submission_id))


def read_range(path: str, offset: int, max_bytes: int) -> bytes:
    """Up to ``max_bytes`` of a file from ``offset`` (nothing if it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(max_bytes)
    except OSError:
        return b""


def read_job_log(submission_id: str, offset: int, max_bytes: int) -> bytes:
    """Part of a job's log, read on the node it ran on (run there as a task once the job's
    supervisor is gone)."""
    return read_range(_log_path(submission_id), offset, max_bytes)


def _record_group(submission_id: str, group: job_state.ProcessGroup) -> None:
    from manta.experimental import internal_kv

    internal_kv._internal_kv_put(submission_id, group.to_json(), namespace=job_state.GROUPS_NAMESPACE)


def _forget_group(submission_id: str) -> None:
    from manta.experimental import internal_kv

    internal_kv._internal_kv_del(submission_id, namespace=job_state.GROUPS_NAMESPACE)


def kill_group(group: job_state.ProcessGroup) -> bool:
    """SIGKILL what is left of a job's entrypoint process group (run on its node). The
    group's id cannot have been reused while any member lives; its leader, if still there,
    must be the very process that was started."""
    try:
        leader = psutil.Process(group.pgid)
        if abs(leader.create_time() - group.started) > 0.01:
            return False  # the id now names an unrelated process
    except psutil.NoSuchProcess:
        pass
    try:
        os.killpg(group.pgid, signal.SIGKILL)
    except OSError:
        return False
    return True


def process_tree(root_pid: int) -> list[psutil.Process]:
    """A process and every descendant (some may have left its process group)."""
    try:
        root = psutil.Process(root_pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def signal_tree(root_pid: int, tree: list[psutil.Process], sig: int) -> None:
    """Send ``sig`` to ``root_pid``'s process group and to each of ``tree`` (taken before
    the first signal: once the root exits, its children can no longer be found from it;
    psutil refuses to signal a process whose pid was reused since)."""
    try:
        os.killpg(root_pid, sig)
    except OSError:
        pass
    for process in tree:
        try:
            process.send_signal(sig)
        except psutil.Error:
            pass


class JobSupervisor:
    def __init__(self, submission_id: str, entrypoint: str, cluster_address: str) -> None:
        from manta._private.api.context import require_initialized

        self._id = submission_id
        self._entrypoint = entrypoint
        self._cluster_address = cluster_address
        worker = require_initialized("supervising a job")
        self._node_id = worker.node_id.hex()
        self._session_dir = worker.session.session_dir
        self.log_path = _log_path(submission_id)
        self._proc: asyncio.subprocess.Process | None = None
        self._stopping = False
        self._final: asyncio.Future[str] | None = None

    async def run(self, runtime_env: dict[str, Any] | None) -> str:
        """Run the entrypoint to its end; returns the job's final status."""
        final = self._final = asyncio.get_running_loop().create_future()
        try:
            status = await self._run(runtime_env)
        except asyncio.CancelledError:
            final.cancel()
            raise
        except BaseException as e:
            final.set_exception(e)
            raise
        final.set_result(status)
        return status

    async def wait(self) -> str:
        """The job's final status, once it has one (for a dashboard that restarted and
        lost its wait on ``run``)."""
        while self._final is None:
            await asyncio.sleep(0.1)
        return await asyncio.shield(self._final)

    async def _run(self, runtime_env: dict[str, Any] | None) -> str:
        if not await asyncio.to_thread(
            advance_record, self._id, JobStatus.RUNNING, driver_node_id=self._node_id
        ):
            return JobStatus.STOPPED.value  # stopped (or deleted) before it could start
        env = entrypoint_env(
            dict(os.environ), self._session_dir, self._cluster_address, self._id, runtime_env
        )
        with open(self.log_path, "ab") as log:
            try:
                self._proc = await asyncio.create_subprocess_shell(
                    self._entrypoint,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                    preexec_fn=die_with_parent,
                )
            except OSError as e:
                await asyncio.to_thread(
                    advance_record,
                    self._id,
                    JobStatus.FAILED,
                    message=f"the entrypoint could not be started: {e}",
                    error_type=JobErrorType.JOB_ENTRYPOINT_COMMAND_START_ERROR.value,
                )
                return JobStatus.FAILED.value
        # Where the entrypoint's process group is, for whoever must end it if this
        # supervisor dies first (its death kills only the shell, not what the shell started).
        try:
            started: float | None = psutil.Process(self._proc.pid).create_time()
        except psutil.NoSuchProcess:  # already over (a command that does not exist)
            started = None
        if started is not None:
            group = job_state.ProcessGroup(self._node_id, self._proc.pid, started)
            await asyncio.to_thread(_record_group, self._id, group)
        code = await self._proc.wait()
        if started is not None:
            await asyncio.to_thread(_forget_group, self._id)
        if self._stopping:
            status, changes = JobStatus.STOPPED, {"message": "Job was intentionally stopped."}
        elif code == 0:
            status, changes = JobStatus.SUCCEEDED, {"message": "Job finished successfully."}
        else:
            tail = _tail(self.log_path, job_state.FAILURE_LOG_TAIL_CHARS)
            status, changes = (
                JobStatus.FAILED,
                {
                    "message": job_state.failure_message(code, tail),
                    "error_type": JobErrorType.JOB_ENTRYPOINT_COMMAND_ERROR.value,
                },
            )
        await asyncio.to_thread(advance_record, self._id, status, driver_exit_code=code, **changes)
        return status.value

    async def stop(self) -> bool:
        """End the entrypoint's whole process tree: SIGTERM, then SIGKILL after a grace
        period. False when it is not running (not started yet, or already ended)."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return False
        self._stopping = True
        tree = process_tree(proc.pid)
        signal_tree(proc.pid, tree, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
        except asyncio.TimeoutError:
            pass
        # Whatever of the tree outlived the grace period (the root may have gone first).
        signal_tree(proc.pid, tree, signal.SIGKILL)
        return True
