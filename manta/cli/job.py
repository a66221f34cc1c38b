"""``manta job``: submit jobs to a cluster's head and follow, inspect, stop and delete them
(Ray's ``ray job`` commands, over the same HTTP API as ``JobSubmissionClient``), and show a
job's provenance (``describe``, Manta's own)."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
import time
from typing import Any

import click

from manta.cli import head
from manta.job_submission.models import JobDetails, JobStatus
from manta.job_submission.sdk import JobSubmissionClient

# How often `stop` looks whether the job has ended.
_STOP_POLL_S = 0.25


def _json_option(text: str | None, option: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as e:
        raise click.BadParameter(f"not valid JSON: {e}", param_hint=option) from None


def _load_runtime_env_file(path: str) -> Any:
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise click.BadParameter(f"cannot read it: {e}", param_hint="--runtime-env") from None
    is_yaml = path.endswith((".yaml", ".yml"))
    try:
        import yaml
    except ImportError:
        if is_yaml:
            raise click.BadParameter(
                "reading a YAML runtime env needs PyYAML (pip install pyyaml); or write it as a .json file",
                param_hint="--runtime-env",
            ) from None
        yaml = None
    try:
        # YAML is a superset of JSON, so with PyYAML any of the two is read.
        return json.loads(text) if yaml is None or path.endswith(".json") else yaml.safe_load(text)
    except Exception as e:
        raise click.BadParameter(f"cannot parse {path}: {e}", param_hint="--runtime-env") from None


def _runtime_env(file: str | None, as_json: str | None, working_dir: str | None) -> dict[str, Any] | None:
    if file and as_json:
        raise click.UsageError("give only one of --runtime-env and --runtime-env-json")
    env = _load_runtime_env_file(file) if file else _json_option(as_json, "--runtime-env-json")
    if env is not None and not isinstance(env, dict):
        raise click.BadParameter("a runtime env must be a mapping", param_hint="--runtime-env")
    if working_dir:
        env = {**(env or {}), "working_dir": working_dir}
    return env


def _report(client: JobSubmissionClient, job_id: str) -> JobStatus:
    """Print how the job stands (as its final words when it has ended); returns its status."""
    info: JobDetails = head.call(client.get_job_info, job_id)
    rule = "-" * 40
    if info.status is JobStatus.SUCCEEDED:
        click.echo(f"{rule}\nJob '{job_id}' succeeded\n{rule}")
    elif info.status is JobStatus.STOPPED:
        click.echo(f"Job '{job_id}' was stopped")
    elif info.status is JobStatus.FAILED:
        click.echo(f"{rule}\nJob '{job_id}' failed\n{rule}")
        if info.message:
            click.echo(f"Status message: {info.message}")
    else:
        click.echo(f"Status for job '{job_id}': {info.status}")
        if info.message:
            click.echo(f"Status message: {info.message}")
    return info.status


def _follow(client: JobSubmissionClient, job_id: str) -> None:
    async def stream() -> None:
        async for chunk in client.tail_job_logs(job_id):
            sys.stdout.write(chunk)
            sys.stdout.flush()

    try:
        asyncio.run(stream())
    except (ConnectionError, RuntimeError) as e:
        raise click.ClickException(str(e)) from None


@click.group()
def job() -> None:
    """Submit jobs to a cluster and follow, list, stop or delete them."""


@job.command(context_settings={"ignore_unknown_options": True})
@head.address_option
@head.token_option
@click.option(
    "--working-dir", default=None, help="Local directory (or .zip) uploaded as the job's working_dir."
)
@click.option("--runtime-env", default=None, help="YAML or JSON file holding the job's runtime_env.")
@click.option("--runtime-env-json", default=None, help="The job's runtime_env as a JSON string.")
@click.option(
    "--submission-id", "--job-id", "submission_id", default=None, help="The job's id (default: a new one)."
)
@click.option("--metadata-json", default=None, help="Free-form string labels of the job, as a JSON object.")
@click.option("--entrypoint-num-cpus", type=float, default=None, help="CPUs reserved for the entrypoint.")
@click.option("--entrypoint-num-gpus", type=float, default=None, help="GPUs reserved for the entrypoint.")
@click.option(
    "--entrypoint-memory", type=int, default=None, help="Memory (bytes) reserved for the entrypoint."
)
@click.option("--entrypoint-resources", default=None, help="Custom resources reserved, as a JSON object.")
@click.option("--no-wait", is_flag=True, help="Return once submitted instead of following the job's logs.")
@click.argument("entrypoint", nargs=-1, required=True, type=click.UNPROCESSED)
def submit(
    address: str | None,
    token_file: str | None,
    working_dir: str | None,
    runtime_env: str | None,
    runtime_env_json: str | None,
    submission_id: str | None,
    metadata_json: str | None,
    entrypoint_num_cpus: float | None,
    entrypoint_num_gpus: float | None,
    entrypoint_memory: int | None,
    entrypoint_resources: str | None,
    no_wait: bool,
    entrypoint: tuple[str, ...],
) -> None:
    """Submit ENTRYPOINT (after `--`) as a job; then print its output until it ends.

    Exits 0 when the job succeeded (or, with --no-wait, was submitted), 1 otherwise.
    Example: manta job submit --working-dir . -- python script.py --epochs 3
    """
    env = _runtime_env(runtime_env, runtime_env_json, working_dir)
    metadata = _json_option(metadata_json, "--metadata-json")
    resources = _json_option(entrypoint_resources, "--entrypoint-resources")
    client = head.client(address, token_file, JobSubmissionClient)
    click.echo(f"Job submission server address: {client.address}")
    job_id: str = head.call(
        client.submit_job,
        # Each word quoted, as Ray does: `-- python -c "print(1)"` runs exactly that.
        entrypoint=shlex.join(entrypoint),
        submission_id=submission_id,
        runtime_env=env,
        metadata=metadata,
        entrypoint_num_cpus=entrypoint_num_cpus,
        entrypoint_num_gpus=entrypoint_num_gpus,
        entrypoint_memory=entrypoint_memory,
        entrypoint_resources=resources,
    )
    click.echo(f"Job '{job_id}' submitted successfully")
    click.echo(f"  Logs:    manta job logs {job_id}\n  Status:  manta job status {job_id}")
    click.echo(f"  Stop:    manta job stop {job_id}")
    if no_wait:
        return
    click.echo("Tailing logs until the job exits (disable with --no-wait):")
    _follow(client, job_id)
    if _report(client, job_id) is not JobStatus.SUCCEEDED:
        sys.exit(1)


@job.command(name="list")
@head.address_option
@head.token_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_jobs(address: str | None, token_file: str | None, as_json: bool) -> None:
    """List the cluster's jobs."""
    jobs: list[JobDetails] = head.call(head.client(address, token_file, JobSubmissionClient).list_jobs)
    if as_json:
        click.echo(json.dumps([j.to_json() for j in jobs], indent=2))
        return
    jobs.sort(key=lambda j: j.start_time or 0)
    rows = [("SUBMISSION ID (or DRIVER JOB ID)", "STATUS", "STARTED", "ENTRYPOINT")]
    for j in jobs:
        started = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j.start_time / 1000)) if j.start_time else "-"
        )
        name = j.submission_id or f"driver {j.job_id}"
        rows.append((name, j.status.value, started, _shorten(j.entrypoint, 60)))
    head.echo_table(rows)


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


@job.command()
@head.address_option
@head.token_option
@click.argument("job_id")
def status(address: str | None, token_file: str | None, job_id: str) -> None:
    """Print a job's status and status message."""
    _report(head.client(address, token_file, JobSubmissionClient), job_id)


@job.command()
@head.address_option
@head.token_option
@click.option("-f", "--follow", is_flag=True, help="Keep printing output as it comes, until the job ends.")
@click.argument("job_id")
def logs(address: str | None, token_file: str | None, follow: bool, job_id: str) -> None:
    """Print a job's output (stdout and stderr)."""
    client = head.client(address, token_file, JobSubmissionClient)
    if follow:
        _follow(client, job_id)
    else:
        click.echo(head.call(client.get_job_logs, job_id), nl=False)


@job.command()
@head.address_option
@head.token_option
@click.option("--no-wait", is_flag=True, help="Return at once instead of waiting for the job to end.")
@click.argument("job_id")
def stop(address: str | None, token_file: str | None, no_wait: bool, job_id: str) -> None:
    """Stop a job: SIGTERM to its processes, SIGKILL after a grace period."""
    client = head.client(address, token_file, JobSubmissionClient)
    click.echo(f"Attempting to stop job '{job_id}'")
    if not head.call(client.stop_job, job_id):
        click.echo(f"Job '{job_id}' had already ended")
    if no_wait:
        return
    while not head.call(client.get_job_status, job_id).is_terminal():
        time.sleep(_STOP_POLL_S)
    _report(client, job_id)


@job.command()
@head.address_option
@head.token_option
@click.argument("job_id")
def delete(address: str | None, token_file: str | None, job_id: str) -> None:
    """Forget an ended job: its record and its log."""
    head.call(head.client(address, token_file, JobSubmissionClient).delete_job, job_id)
    click.echo(f"Job '{job_id}' deleted successfully")


@job.command()
@head.address_option
@head.token_option
@click.option(
    "--format", "output_format", type=click.Choice(["text", "json"]), default="text", help="Output format."
)
@click.argument("job_id")
def describe(address: str | None, token_file: str | None, output_format: str, job_id: str) -> None:
    """Print a job's provenance: who submitted it, what it asked for, where and on what it
    ran (versions, a hash of its installed packages), what it consumed and how it ended."""
    provenance = head.call(head.client(address, token_file, JobSubmissionClient).get_job_provenance, job_id)
    if output_format == "json":
        click.echo(json.dumps(provenance, indent=2, sort_keys=True))
    else:
        click.echo("\n".join(describe_lines(provenance)))


def describe_lines(p: dict[str, Any]) -> list[str]:
    """A provenance record as aligned ``label: value`` lines; "-" for what is not known."""

    def when(ms: int | None) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else "-"

    status = p.get("status") or "-"
    if p.get("exit_code") is not None:
        status += f" (exit code {p['exit_code']})"
    requested = {
        "cpus": p.get("entrypoint_num_cpus"),
        "gpus": p.get("entrypoint_num_gpus"),
        "memory": p.get("entrypoint_memory"),
        "resources": p.get("entrypoint_resources"),
    }
    consumed = "-"
    if p.get("cpu_seconds") is not None:
        consumed = f"{p['cpu_seconds']:.2f} CPU seconds, peak memory {_mib(p.get('peak_memory_bytes'))}"
    log = p.get("log_path") or {}
    packages = "-"
    if p.get("packages_hash"):
        packages = f"{p.get('packages_count')} installed, sha256 {p['packages_hash']}"
    rows = [
        ("Job", p.get("submission_id") or "-"),
        ("Status", status),
        ("Entrypoint", p.get("entrypoint") or "-"),
        (
            "Submitted",
            f"{when(p.get('submit_time'))} by {p.get('submitter')} (role {p.get('submitter_role')})",
        ),
        ("Started", when(p.get("start_time"))),
        ("Ended", when(p.get("end_time"))),
        ("Runtime env", json.dumps(p.get("runtime_env"), sort_keys=True) if p.get("runtime_env") else "-"),
        ("Requested", ", ".join(f"{k}={v}" for k, v in requested.items() if v) or "nothing reserved"),
        ("Consumed", consumed),
        ("Nodes used", ", ".join(p.get("nodes_used") or []) or "-"),
        ("Log", f"{log['path']} on node {log['node_id']}" if log else "-"),
        ("Manta", p.get("manta_version") or "-"),
        ("Python", p.get("python_version") or "-"),
        ("Packages", packages),
    ]
    width = max(len(label) for label, _ in rows) + 1
    return [f"{(label + ':').ljust(width)} {value}" for label, value in rows]


def _mib(size: int | None) -> str:
    return "-" if size is None else f"{size / (1 << 20):.1f} MiB"
