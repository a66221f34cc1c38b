"""Decisions about submitted jobs, without I/O: ids, status changes, how a job is placed,
what its failure says, and its provenance record (what folds into it). The job manager and
the supervisor carry them out."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import secrets
import string
from collections.abc import Iterable, Mapping
from typing import Any

from manta._private.api.job_rows import KV_NAMESPACE as KV_NAMESPACE  # re-exported for the job manager
from manta._private.api.job_rows import SUPERVISOR_NAMESPACE, driver_row
from manta._private.common.session import job_driver_log_name
from manta.job_submission.models import DriverInfo, JobDetails, JobInfo, JobStatus

# Submission ids name the job's log file, so they are restricted to a safe alphabet.
_ID_PATTERN = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_ID_ALPHABET = string.ascii_letters + string.digits

# Where each running entrypoint's process group is recorded (see ProcessGroup).
GROUPS_NAMESPACE = "job_process_groups"
# Each job's provenance record, keyed like its job record. Not in KV_NAMESPACE: every key
# there is read as a JobInfo, and Ray's JobInfo/JobDetails must not gain members.
PROVENANCE_NAMESPACE = "job_provenance"

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
    return job_driver_log_name(submission_id)


def record_key(submission_id: str) -> bytes:
    return submission_id.encode()


def advance(info: JobInfo, status: JobStatus, now_ms: int, **changes: Any) -> JobInfo | None:
    """``info`` moved to ``status`` (with ``changes``), or None when it may not move: a job
    that ended stays ended, whatever arrives late."""
    if info.status.is_terminal():
        return None
    # As in Ray, a move without a message of its own clears the old one ("Job has not
    # started yet." is no longer true of a running job).
    new = dataclasses.replace(info, status=status, **{"message": None, **changes})
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
    its ids) or this service's own."""
    found = driver_row(job)
    if found is None:
        return None
    submission_id, row = found
    submission = submitted.get(submission_id)
    if submission is not None:
        submission.job_id = row["job_id"]
        submission.driver_info = DriverInfo(**row["driver_info"])
        return None
    return JobDetails(**row)


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


# -- provenance ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class JobProvenance:
    """Who submitted a job, what it asked for, where and on what it ran, what it consumed
    and how it ended (a Manta extension; Ray has no such record). Times are Unix
    milliseconds, as in JobInfo. A field is None until it is known: the submit writes who
    asked for what, the supervisor the rest as the job starts and ends."""

    submission_id: str
    entrypoint: str
    runtime_env: dict[str, Any] | None
    submitter: str  # the name of the token that submitted it ("cluster": the cluster's own)
    submitter_role: str
    submit_time: int
    entrypoint_num_cpus: float | None = None
    entrypoint_num_gpus: float | None = None
    entrypoint_memory: int | None = None
    entrypoint_resources: dict[str, float] | None = None
    # How it stands: a copy of its job record's, written with each change of the record.
    status: str = "PENDING"
    start_time: int | None = None
    end_time: int | None = None
    exit_code: int | None = None
    # The supervisor's process, which runs in the job's runtime env on the entrypoint's node.
    manta_version: str | None = None
    python_version: str | None = None
    packages_hash: str | None = None
    packages_count: int | None = None
    # The entrypoint's process tree; the workers that ran its tasks and actors are not its
    # descendants, and are not counted.
    cpu_seconds: float | None = None
    peak_memory_bytes: int | None = None
    nodes_used: list[str] = dataclasses.field(default_factory=list)
    log_path: dict[str, str] | None = None  # {"node_id": ..., "path": ...}

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobProvenance:
        # A field this version does not know (written by a newer head) is left out.
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def amended(self, changes: Mapping[str, Any]) -> JobProvenance:
        """This record with ``changes``; nodes only add up (each writer knows some)."""
        changes = dict(changes)
        if "nodes_used" in changes:
            changes["nodes_used"] = list(dict.fromkeys([*self.nodes_used, *changes["nodes_used"]]))
        return dataclasses.replace(self, **changes)


def provenance_at_submit(
    submission_id: str, info: JobInfo, submitter: str, submitter_role: str, now_ms: int
) -> JobProvenance:
    return JobProvenance(
        submission_id=submission_id,
        entrypoint=info.entrypoint,
        runtime_env=info.runtime_env,
        submitter=submitter,
        submitter_role=submitter_role,
        submit_time=now_ms,
        entrypoint_num_cpus=info.entrypoint_num_cpus,
        entrypoint_num_gpus=info.entrypoint_num_gpus,
        entrypoint_memory=info.entrypoint_memory,
        entrypoint_resources=info.entrypoint_resources,
        status=info.status.value,
    )


def record_facts(info: JobInfo) -> dict[str, Any]:
    """What a provenance record copies from its job's record whenever that changes."""
    return {
        "status": info.status.value,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "exit_code": info.driver_exit_code,
    }


def packages_digest(distributions: Iterable[tuple[str, str]]) -> tuple[str, int]:
    """SHA-256 (hex) over the sorted ``name==version`` lines of the installed
    distributions, and how many there are. ``distributions`` come in import order: a name
    installed twice (a venv over the system's site-packages) counts as the one found first,
    which is the one imported. Names are compared and written in PEP 503 normal form, so the
    same environment hashes the same however its metadata spells them."""
    versions: dict[str, str] = {}
    for name, version in distributions:
        versions.setdefault(re.sub(r"[-_.]+", "-", name).lower(), version)
    lines = sorted(f"{name}=={version}" for name, version in versions.items())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest(), len(lines)


@dataclasses.dataclass(frozen=True)
class ProcessSample:
    """One process of a tree, as seen once: its pid and start time (a reused pid is another
    process), its CPU time so far (user + system, seconds) and its resident memory."""

    pid: int
    started: float
    cpu_seconds: float
    rss_bytes: int


class UsageTally:
    """What a process tree consumed, folded from samples of it taken while it ran.

    CPU time only grows, so each process's largest sample is its best known total; their sum
    counts the children that ended between samples. Memory is the largest sum of RSS over
    one sample. Both miss what happened after the last sample: ``usage`` lets the caller
    raise them to figures from another source (the reaped tree's rusage)."""

    def __init__(self) -> None:
        self._cpu: dict[tuple[int, float], float] = {}
        self._peak_rss = 0

    def observe(self, samples: Iterable[ProcessSample]) -> None:
        rss = 0
        for s in samples:
            key = (s.pid, s.started)
            self._cpu[key] = max(self._cpu.get(key, 0.0), s.cpu_seconds)
            rss += s.rss_bytes
        self._peak_rss = max(self._peak_rss, rss)

    def usage(self, reaped_cpu_seconds: float = 0.0, reaped_peak_rss: int = 0) -> dict[str, Any]:
        """The provenance fields, each the larger of two lower bounds: the samples', and
        the one measured when the tree was reaped."""
        cpu = max(sum(self._cpu.values()), reaped_cpu_seconds)
        return {"cpu_seconds": round(cpu, 3), "peak_memory_bytes": max(self._peak_rss, reaped_peak_rss)}
