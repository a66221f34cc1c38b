"""Decisions about submitted jobs, without I/O: ids, status changes, how a job is placed,
and what its failure says. The job manager and the supervisor carry them out."""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import string
from typing import Any

from manta.job_submission.models import DriverInfo, JobDetails, JobInfo, JobStatus, JobType

# Submission ids name the job's log file, so they are restricted to a safe alphabet.
_ID_PATTERN = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_ID_ALPHABET = string.ascii_letters + string.digits

SUPERVISOR_NAMESPACE = "_manta_jobs"
KV_NAMESPACE = "job_submission"
# Where each running entrypoint's process group is recorded (see ProcessGroup).
GROUPS_NAMESPACE = "job_process_groups"

# How much of a failed entrypoint's output its FAILED message carries.
FAILURE_LOG_TAIL_CHARS = 20_000


@dataclasses.dataclass(frozen=True)
class ProcessGroup:
    """A job entrypoint's process group: on which node, its id, and its leader's start time
    (so a reused id is not mistaken for it)."""

    node_id: str
    pgid: int
    started: float

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> ProcessGroup:
        return cls(**json.loads(raw))


def new_submission_id() -> str:
    return "mantasubmit_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


def check_submission_id(submission_id: str) -> str | None:
    """Why ``submission_id`` is not acceptable, or None."""
    if not _ID_PATTERN.fullmatch(submission_id) or submission_id in (".", ".."):
        return f"invalid submission_id {submission_id!r}: use 1 to 128 letters, digits, '_', '-' or '.'"
    return None


def supervisor_name(submission_id: str) -> str:
    return f"_manta_job_supervisor_{submission_id}"


def log_name(submission_id: str) -> str:
    """The entrypoint's log, in the logs directory of the node it runs on."""
    return f"job-driver-{submission_id}.log"


def record_key(submission_id: str) -> bytes:
    return submission_id.encode()


def advance(info: JobInfo, status: JobStatus, now_ms: int, **changes: Any) -> JobInfo | None:
    """``info`` moved to ``status`` (with ``changes``), or None when it may not move: a job
    that ended stays ended, whatever arrives late."""
    if info.status.is_terminal():
        return None
    new = dataclasses.replace(info, status=status, **changes)
    if status.is_terminal():
        new.end_time = now_ms
    if status is JobStatus.RUNNING and new.start_time is None:
        new.start_time = now_ms
    return new


def wants_resources(info: JobInfo) -> bool:
    """Whether the job asked for entrypoint resources (then it may run on any node that
    has them; otherwise it runs on the head, as in Ray)."""
    return bool(
        (info.entrypoint_num_cpus or 0) > 0
        or (info.entrypoint_num_gpus or 0) > 0
        or (info.entrypoint_memory or 0) > 0
        or info.entrypoint_resources
    )


def supervisor_options(info: JobInfo, submission_id: str, head_node_id: str) -> dict[str, Any]:
    """The ``.options()`` of the job's supervisor actor: it holds the entrypoint's
    resources for the job's life and carries the job's runtime environment, so the node
    sets that environment up before the entrypoint starts."""
    from manta.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    options: dict[str, Any] = {
        "name": supervisor_name(submission_id),
        "namespace": SUPERVISOR_NAMESPACE,
        "lifetime": "detached",
        "max_restarts": 0,
        "num_cpus": info.entrypoint_num_cpus or 0,
        "num_gpus": info.entrypoint_num_gpus or 0,
        "resources": dict(info.entrypoint_resources or {}),
        "runtime_env": info.runtime_env,
    }
    if info.entrypoint_memory:
        options["memory"] = info.entrypoint_memory
    if not wants_resources(info):
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(head_node_id, soft=False)
    return options


def failure_message(exit_code: int, log_tail: str) -> str:
    text = f"Job entrypoint command failed with exit code {exit_code}"
    if not log_tail.strip():
        return text + ", and it printed nothing."
    return f"{text}, last available logs (truncated to {FAILURE_LOG_TAIL_CHARS:,} chars):\n{log_tail}"


def pending_message(info: JobInfo) -> str:
    text = "Job has not started yet."
    if wants_resources(info):
        text += " It may be waiting for resources (CPUs, GPUs, memory, custom resources) to become available."
    if info.runtime_env:
        text += " It may be waiting for its runtime environment to be set up."
    return text


def check_remote_runtime_env(runtime_env: Any) -> str | None:
    """What is wrong with a runtime env sent over HTTP, beyond what any runtime env is
    checked for: it comes from another machine, so it may not name paths on the head
    (local directories and requirement files are uploaded or read by the client)."""
    if not isinstance(runtime_env, dict):
        return None  # None, or a type error the general check reports
    sources = [runtime_env.get("working_dir"), *(runtime_env.get("py_modules") or [])]
    for source in sources:
        if source is not None and not (isinstance(source, str) and source.startswith("gcs://")):
            return (
                f"{source!r} is a path; over HTTP, working_dir and py_modules must be uploaded "
                "packages (gcs://...). JobSubmissionClient and `manta job submit` upload local ones."
            )
    for field in ("pip", "uv"):
        spec = runtime_env.get(field)
        packages = spec.get("packages") if isinstance(spec, dict) else spec
        if isinstance(packages, str):
            return f"runtime_env[{field!r}] names a file; over HTTP give the list of requirements"
    return None


def driver_details(job: Any, submitted: dict[str, JobDetails]) -> JobDetails | None:
    """What the jobs API shows of a driver's job (an ``m.JobInfo``): a DRIVER job of its
    own, or None when it is the driver of a submitted job (which it then completes with
    its ids, as Ray does) or this service's own."""
    if job.namespace == SUPERVISOR_NAMESPACE:
        return None
    driver = DriverInfo(job.job_id.hex(), job.driver.host, str(job.driver.pid))
    submission = submitted.get(job.config.get("submission_id", ""))
    if submission is not None:
        submission.job_id = job.job_id.hex()
        submission.driver_info = driver
        return None
    return JobDetails(
        status=JobStatus.RUNNING if job.alive else JobStatus.SUCCEEDED,
        entrypoint=job.config.get("entrypoint", ""),
        start_time=int(job.start_time * 1000),
        end_time=int(job.end_time * 1000) if not job.alive else None,
        metadata=job.config.get("metadata") or {},
        runtime_env=job.config.get("runtime_env"),
        type=JobType.DRIVER,
        job_id=job.job_id.hex(),
        driver_info=driver,
    )


def packages_of(runtime_env: dict[str, Any] | None) -> set[str]:
    """The uploaded packages (gcs:// uris) a runtime env uses."""
    if not runtime_env:
        return set()
    sources = [runtime_env.get("working_dir"), *(runtime_env.get("py_modules") or [])]
    return {s for s in sources if isinstance(s, str) and s.startswith("gcs://")}


def uses_packages(runtime_env: dict[str, Any] | None) -> bool:
    """Whether a runtime env ships code (a working_dir or py_modules), uploaded or not yet."""
    return bool(runtime_env and (runtime_env.get("working_dir") or runtime_env.get("py_modules")))


def unused_packages(deleted: dict[str, Any] | None, remaining: list[dict[str, Any] | None]) -> set[str]:
    """The packages of a deleted job that no remaining job uses: they can go."""
    in_use: set[str] = set()
    for env in remaining:
        in_use |= packages_of(env)
    return packages_of(deleted) - in_use
