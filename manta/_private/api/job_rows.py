"""Jobs as the jobs API and the state API list them: where submitted jobs' records live,
and what a driver's job (an ``m.JobInfo`` from the gcs) shows as."""

from __future__ import annotations

from typing import Any

from manta._private.rpc import messages as m

# The namespace of the head's job supervisors (their drivers are not listed as jobs).
SUPERVISOR_NAMESPACE = "_manta_jobs"
# Submitted jobs' records in the gcs's KV store, keyed by submission id, as JSON.
KV_NAMESPACE = "job_submission"


def driver_row(job: m.JobInfo) -> tuple[str, dict[str, Any]] | None:
    """(the submission id it drives, or "", the fields of a DRIVER job) for a driver's job;
    None for the head's own supervisors. A driver of a submitted job completes that job's
    record with its ids, as in Ray, rather than being listed on its own."""
    if job.namespace == SUPERVISOR_NAMESPACE:
        return None
    row = {
        "type": "DRIVER",
        "job_id": job.job_id.hex(),
        "submission_id": None,
        "driver_info": {
            "id": job.job_id.hex(),
            "node_ip_address": job.driver.host,
            "pid": str(job.driver.pid),
        },
        "status": "RUNNING" if job.alive else "SUCCEEDED",
        "entrypoint": job.config.get("entrypoint", ""),
        "start_time": int(job.start_time * 1000),
        "end_time": int(job.end_time * 1000) if not job.alive else None,
        "metadata": job.config.get("metadata") or {},
        "runtime_env": job.config.get("runtime_env"),
    }
    return str(job.config.get("submission_id", "")), row
