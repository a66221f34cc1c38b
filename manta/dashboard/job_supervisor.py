"""The supervisor of one submitted job: an actor that runs the entrypoint as a child
process, writes its output to a log file on its node, and records the job's status.

It is created with the job's entrypoint resources and runtime environment, so the node
has set that environment up (working_dir unpacked and made the current directory,
env_vars set, a pip venv active) before ``run`` starts the entrypoint in it. Its status
writes go straight to the gcs, so a job's record stays right whatever happens to the
dashboard process that asked for it.

It also completes the job's provenance record: the environment the entrypoint runs in
(versions, a hash of the installed packages) when it starts, and what its process tree
consumed (sampled while it runs) when it ends.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import platform
import resource
import signal
import subprocess
import time
from collections.abc import Mapping
from typing import Any

import psutil

from manta._private.common.pdeathsig import die_with_parent
from manta._private.common.version import __version__
from manta.dashboard import job_state
from manta.job_submission.models import JobErrorType, JobInfo, JobStatus

logger = logging.getLogger("manta.dashboard")

# How long a stopped entrypoint has between SIGTERM and SIGKILL (Ray's default).
STOP_GRACE_S = 3.0
# How often the entrypoint's process tree is sampled for its CPU time and memory.
USAGE_SAMPLE_S = 0.5
# Which samples also ask the gcs where the job's driver and actors run: the first about a
# second in (a short job's driver has joined by then), then every five seconds.
_NODES_FIRST_TICK = 2
_NODES_EVERY_TICKS = 10


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


def advance_record(
    submission_id: str, status: JobStatus, provenance: Mapping[str, Any] | None = None, **changes: Any
) -> bool:
    """Move the job's record to ``status`` (in the gcs), and its provenance record with it,
    adding ``provenance`` to that; False when it may not (it ended already, or was deleted).
    The supervisor and the dashboard both change records so."""
    from manta.experimental import internal_kv

    key = job_state.record_key(submission_id)
    raw = internal_kv._internal_kv_get(key, namespace=job_state.KV_NAMESPACE)
    if raw is None:  # deleted meanwhile: nothing to record
        return False
    new = job_state.advance(JobInfo.from_json(json.loads(raw)), status, int(time.time() * 1000), **changes)
    if new is None:
        return False
    # The provenance first: once the record says the job ended, the job may be deleted, and
    # a provenance written after that would outlive it.
    amend_provenance(submission_id, {**job_state.record_facts(new), **(provenance or {})})
    internal_kv._internal_kv_put(key, json.dumps(new.to_json()), namespace=job_state.KV_NAMESPACE)
    return True


def read_provenance(submission_id: str) -> job_state.JobProvenance | None:
    from manta.experimental import internal_kv

    key = job_state.record_key(submission_id)
    raw = internal_kv._internal_kv_get(key, namespace=job_state.PROVENANCE_NAMESPACE)
    return None if raw is None else job_state.JobProvenance.from_json(json.loads(raw))


def write_provenance(submission_id: str, provenance: job_state.JobProvenance) -> None:
    from manta.experimental import internal_kv

    key = job_state.record_key(submission_id)
    internal_kv._internal_kv_put(
        key, json.dumps(provenance.to_json()), namespace=job_state.PROVENANCE_NAMESPACE
    )


def amend_provenance(submission_id: str, changes: Mapping[str, Any]) -> None:
    """Add ``changes`` to the job's provenance record; nothing when it has none (deleted,
    or submitted to a head that did not record provenance yet)."""
    old = read_provenance(submission_id)
    if old is not None:
        write_provenance(submission_id, old.amended(changes))


def environment_facts() -> dict[str, Any]:
    """What the provenance says of the environment the entrypoint runs in. This process's
    is that environment: the node set it up with the job's runtime env (a pip venv's
    site-packages are on sys.path, so importlib finds its distributions first)."""
    from importlib import metadata

    installed = []
    for dist in metadata.distributions():
        meta = dist.metadata
        if "Name" in meta and "Version" in meta:  # a broken install may have neither
            installed.append((meta["Name"], meta["Version"]))
    digest, count = job_state.packages_digest(installed)
    return {
        "manta_version": __version__,
        "python_version": platform.python_version(),
        "packages_hash": digest,
        "packages_count": count,
    }


def job_nodes(submission_id: str) -> set[str]:
    """The nodes the gcs says the job's drivers and its living actors are on. Tasks are
    not counted: which node ran a task is not kept anywhere (there is no task-event store),
    and an actor that died has lost its node by the time anyone asks."""
    from manta._private.api.context import require_initialized
    from manta._private.rpc import messages as m

    worker = require_initialized("finding a job's nodes")
    drivers = [j for j in worker.call_gcs(m.GetAllJobs()) if j.config.get("submission_id") == submission_id]
    nodes = {j.driver.node_id.hex() for j in drivers}
    job_ids = {j.job_id for j in drivers}
    if job_ids:
        for actor in worker.call_gcs(m.ListActors()):
            if actor.address is not None and actor.actor_id.job_id() in job_ids:
                nodes.add(actor.address.node_id.hex())
    return nodes


def _job_nodes_quietly(submission_id: str) -> set[str]:
    try:
        return job_nodes(submission_id)
    except Exception as e:  # the gcs is restarting: this is only a hint for the provenance
        logger.info("could not find the nodes of job %s: %s", submission_id, e)
        return set()


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


class TreeSampler:
    """Samples a process and its descendants. A process stays sampled once seen, even after
    it leaves the tree (an orphan is re-parented out of it), until it ends.

    Each sample lists every process on the host once, to find the descendants (that is
    what finding them costs on Linux), and reads two small /proc files per process."""

    def __init__(self, root_pid: int) -> None:
        try:
            self._root: psutil.Process | None = psutil.Process(root_pid)
        except psutil.NoSuchProcess:
            self._root = None
        self._seen: dict[tuple[int, float], psutil.Process] = {}

    def sample(self) -> list[job_state.ProcessSample]:
        if self._root is not None and self._root.is_running():
            try:
                for p in [self._root, *self._root.children(recursive=True)]:
                    self._seen.setdefault((p.pid, p.create_time()), p)
            except psutil.Error:  # the root ended meanwhile; its processes are sampled below
                pass
        out = []
        for key, p in list(self._seen.items()):
            try:
                if not p.is_running():  # ended, and its pid maybe reused
                    raise psutil.NoSuchProcess(p.pid)
                with p.oneshot():
                    times = p.cpu_times()
                    rss = p.memory_info().rss
            except psutil.Error:
                del self._seen[key]
                continue
            out.append(job_state.ProcessSample(key[0], key[1], times.user + times.system, rss))
        return out


def _reaped_usage(before: resource.struct_rusage) -> tuple[float, int]:
    """The CPU time and largest RSS of the children this process reaped since ``before``.
    A supervisor's only child is its entrypoint, whose descendants are counted too as long
    as each was waited for by its parent: this catches what ran after the last sample."""
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    # ru_maxrss is the largest single process ever reaped (KiB on Linux), not the tree's
    # sum: it is this tree's only when it grew while the tree ran.
    peak = after.ru_maxrss * 1024 if after.ru_maxrss > before.ru_maxrss else 0
    return cpu, peak


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
        self._nodes: set[str] = set()  # where the gcs saw the job's driver and actors

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
        facts = await asyncio.to_thread(environment_facts)
        facts["nodes_used"] = [self._node_id]
        facts["log_path"] = {"node_id": self._node_id, "path": self.log_path}
        if not await asyncio.to_thread(
            advance_record, self._id, JobStatus.RUNNING, facts, driver_node_id=self._node_id
        ):
            return JobStatus.STOPPED.value  # stopped (or deleted) before it could start
        reaped_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = self._proc = await self._start(runtime_env)
        if proc is None:
            return JobStatus.FAILED.value
        # Where the entrypoint's process group is, for whoever must end it if this
        # supervisor dies first (its death kills only the shell, not what the shell started).
        try:
            started: float | None = psutil.Process(proc.pid).create_time()
        except psutil.NoSuchProcess:  # already over (a command that does not exist)
            started = None
        if started is not None:
            group = job_state.ProcessGroup(self._node_id, proc.pid, started)
            await asyncio.to_thread(_record_group, self._id, group)
        sampler, tally, ended = TreeSampler(proc.pid), job_state.UsageTally(), asyncio.Event()
        watcher = asyncio.ensure_future(self._watch_usage(sampler, tally, ended))
        try:
            code = await proc.wait()
        finally:
            ended.set()
        await watcher  # so that no sample is still being taken while the last one is
        if started is not None:
            await asyncio.to_thread(_forget_group, self._id)
        status, changes = self._outcome(code)
        tally.observe(await asyncio.to_thread(sampler.sample))  # what outlived the entrypoint
        usage = tally.usage(*_reaped_usage(reaped_before))
        usage["nodes_used"] = sorted(self._nodes | await asyncio.to_thread(_job_nodes_quietly, self._id))
        await asyncio.to_thread(advance_record, self._id, status, usage, driver_exit_code=code, **changes)
        return status.value

    async def _start(self, runtime_env: dict[str, Any] | None) -> asyncio.subprocess.Process | None:
        """The entrypoint, started; None (and the job failed) when it cannot be."""
        env = entrypoint_env(
            dict(os.environ), self._session_dir, self._cluster_address, self._id, runtime_env
        )
        with open(self.log_path, "ab") as log:
            try:
                return await asyncio.create_subprocess_shell(
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
                return None

    def _outcome(self, code: int) -> tuple[JobStatus, dict[str, Any]]:
        if self._stopping:
            return JobStatus.STOPPED, {"message": "Job was intentionally stopped."}
        if code == 0:
            return JobStatus.SUCCEEDED, {"message": "Job finished successfully."}
        tail = _tail(self.log_path, job_state.FAILURE_LOG_TAIL_CHARS)
        return JobStatus.FAILED, {
            "message": job_state.failure_message(code, tail),
            "error_type": JobErrorType.JOB_ENTRYPOINT_COMMAND_ERROR.value,
        }

    async def _watch_usage(
        self, sampler: TreeSampler, tally: job_state.UsageTally, ended: asyncio.Event
    ) -> None:
        """Sample the entrypoint's tree until it ends; now and then, ask the gcs where the
        job's driver and actors are (actors lose their node when they die, so asking only
        at the end would find none of those that died with the driver)."""
        for tick in itertools.count():
            tally.observe(await asyncio.to_thread(sampler.sample))
            if tick % _NODES_EVERY_TICKS == _NODES_FIRST_TICK:
                self._nodes |= await asyncio.to_thread(_job_nodes_quietly, self._id)
            try:
                await asyncio.wait_for(ended.wait(), USAGE_SAMPLE_S)
                return
            except asyncio.TimeoutError:
                pass

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
