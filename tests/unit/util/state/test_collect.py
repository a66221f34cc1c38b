"""Gathering listings' rows from a fake gcs: jobs from the KV store and drivers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from manta._private.api.job_rows import KV_NAMESPACE, SUPERVISOR_NAMESPACE
from manta._private.common.config import Config
from manta._private.common.ids import JobID, NodeID, WorkerID
from manta._private.rpc import messages as m
from manta.util.state._collect import Gatherer


def job(job_id: int, namespace: str = "ns", **config: Any) -> m.JobInfo:
    driver = m.Address(NodeID.from_random(), WorkerID.from_random(), "10.0.0.1", 1, "", 4242)
    return m.JobInfo(JobID.from_int(job_id), driver, namespace, config, True, 1.0, 0.0)


class FakeGcs:
    def __init__(self, records: dict[bytes, bytes], jobs: list[m.JobInfo]) -> None:
        self.records, self.jobs = records, jobs

    async def call(self, msg: Any) -> Any:
        if isinstance(msg, m.KvKeys):
            assert msg.namespace == KV_NAMESPACE
            return list(self.records)
        if isinstance(msg, m.KvGet):
            return self.records.get(msg.key)
        if isinstance(msg, m.GetAllJobs):
            return self.jobs
        raise AssertionError(msg)


def test_jobs_join_submissions_with_their_drivers_and_skip_what_is_not_a_record():
    submitted = json.dumps({"status": "RUNNING", "entrypoint": "python x.py"}).encode()
    records = {
        b"raysubmit_1": submitted,
        b"garbage": b"{not json",
        b"a-list": b"[1, 2]",
        b"no-status": b'{"entrypoint": "x"}',
        b"bad-status": b'{"status": "DANCING", "entrypoint": "x"}',
    }
    jobs = [job(1, submission_id="raysubmit_1"), job(2), job(3, SUPERVISOR_NAMESPACE)]
    gatherer = Gatherer(FakeGcs(records, jobs).call, b"token", Config())
    rows = asyncio.run(gatherer.rows("jobs"))
    by_type = {(r["type"], r["submission_id"], r["job_id"]) for r in rows}
    assert by_type == {
        ("SUBMISSION", "raysubmit_1", JobID.from_int(1).hex()),  # its driver's ids completed it
        ("DRIVER", None, JobID.from_int(2).hex()),
    }
    [driver] = [r for r in rows if r["type"] == "DRIVER"]
    assert driver["driver_info"]["pid"] == "4242" and driver["status"] == "RUNNING"
