"""A submitted job's provenance record against a real head: written at submit, completed by
the job's supervisor with what the entrypoint consumed, shown by the API and by
``manta job describe``, and deleted with the job."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

import manta
from manta.dashboard import job_state
from manta.experimental import internal_kv
from manta.job_submission import JobDetails, JobStatus, JobSubmissionClient
from tests.http_api import request
from tests.polling import wait_until

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Holds ~50 MB (every page touched, so it is resident) while it burns ~0.5 s of CPU.
BURN = """
import time
held = bytearray(50 << 20)
for i in range(0, len(held), 4096):
    held[i] = 1
end = time.process_time() + 0.5
while time.process_time() < end:
    pass
print("burnt", len(held))
"""


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory):
    # Jobs without a working_dir run in the directory the cluster was started from.
    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("jobs_cwd"))
    try:
        context = manta.init(num_cpus=1, include_dashboard=True)
        yield {
            "url": "http://" + context.dashboard_url,
            "token": Path(context["session_dir"], "token").read_text().strip(),
            "session_dir": context["session_dir"],
            "node_id": context["node_id"],
        }
        manta.shutdown()
    finally:
        os.chdir(here)


@pytest.fixture(scope="module")
def client(head: dict[str, str]) -> JobSubmissionClient:
    return JobSubmissionClient(head["url"])


def script(tmp_path: Any, body: str) -> str:
    path = tmp_path / f"job_{uuid.uuid4().hex[:8]}.py"
    path.write_text(textwrap.dedent(body))
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(path))}"


def wait_ended(client: JobSubmissionClient, submission_id: str) -> JobDetails:
    return wait_until(  # type: ignore[no-any-return]
        lambda: (info := client.get_job_info(submission_id)).status.is_terminal() and info,
        timeout=60,
        what=f"the end of job {submission_id}",
    )


def describe(head: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("MANTA_ADDRESS", "RAY_ADDRESS", "MANTA_AUTH_TOKEN")
    }
    connect = ["--address", head["url"], "--token-file", os.path.join(head["session_dir"], "token")]
    return subprocess.run(
        [sys.executable, "-m", "manta.cli.main", "job", "describe", *connect, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=REPO_ROOT,
    )


@pytest.fixture(scope="module")
def burnt(client: JobSubmissionClient, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A job that burnt CPU and held memory, run to its end: its id, entrypoint, record."""
    entrypoint = script(tmp_path_factory.mktemp("burn"), BURN)
    sid = client.submit_job(
        entrypoint=entrypoint, runtime_env={"env_vars": {"PROVENANCE": "yes"}}, entrypoint_num_cpus=0.5
    )
    info = wait_ended(client, sid)
    assert info.status is JobStatus.SUCCEEDED, info.message
    return {"sid": sid, "entrypoint": entrypoint, "info": info}


def test_a_finished_job_s_provenance(client, head, burnt) -> None:
    p = client.get_job_provenance(burnt["sid"])
    assert p["submission_id"] == burnt["sid"] and p["entrypoint"] == burnt["entrypoint"]
    assert p["runtime_env"] == {"env_vars": {"PROVENANCE": "yes"}}
    assert (p["submitter"], p["submitter_role"]) == ("cluster", "admin")
    assert p["status"] == "SUCCEEDED" and p["exit_code"] == 0
    assert p["cpu_seconds"] >= 0.3 and p["peak_memory_bytes"] >= 40 << 20
    assert p["entrypoint_num_cpus"] == 0.5 and p["entrypoint_num_gpus"] is None
    assert re.fullmatch(r"[0-9a-f]{64}", p["packages_hash"]) and p["packages_count"] > 0
    assert p["manta_version"] == manta.__version__
    assert p["python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert head["node_id"] in p["nodes_used"]
    assert p["log_path"]["node_id"] == head["node_id"]
    assert Path(p["log_path"]["path"]).read_text() == f"burnt {50 << 20}\n"
    # The same times as the job's record, which says nothing of provenance.
    info = burnt["info"]
    assert (p["start_time"], p["end_time"]) == (info.start_time, info.end_time)
    assert p["submit_time"] <= p["start_time"] <= p["end_time"]
    assert "cpu_seconds" not in info.to_json() and "submitter" not in info.to_json()


def test_a_failing_job_records_its_exit_code(client, tmp_path) -> None:
    sid = client.submit_job(entrypoint=script(tmp_path, "import sys; sys.exit(7)"))
    assert wait_ended(client, sid).status is JobStatus.FAILED
    p = client.get_job_provenance(sid)
    assert p["status"] == "FAILED" and p["exit_code"] == 7
    assert p["cpu_seconds"] is not None and p["peak_memory_bytes"] is not None


def test_a_user_token_is_named_as_the_submitter(head, client, tmp_path) -> None:
    status, issued = request(head, "POST", "/api/tokens", {"role": "submit", "name": "provenance-alice"})
    assert status == 200, issued
    alice = JobSubmissionClient(head["url"], headers={"Authorization": f"Bearer {issued['token']}"})
    sid = alice.submit_job(entrypoint=script(tmp_path, "pass"))
    p = alice.get_job_provenance(sid)
    assert (p["submitter"], p["submitter_role"]) == ("provenance-alice", "submit")
    wait_ended(client, sid)


def test_an_unknown_job_has_no_provenance(head) -> None:
    status, body = request(head, "GET", "/api/jobs/no-such-job/provenance")
    assert status == 404 and "does not exist" in body["error"]


def test_describe_prints_it(head, burnt) -> None:
    text = describe(head, burnt["sid"])
    assert text.returncode == 0, text.stderr
    assert re.search(r"^Status: +SUCCEEDED \(exit code 0\)$", text.stdout, re.M), text.stdout
    assert re.search(r"^Submitted: .* by cluster \(role admin\)$", text.stdout, re.M)
    assert burnt["entrypoint"] in text.stdout and head["node_id"] in text.stdout
    assert "CPU seconds, peak memory" in text.stdout
    as_json = describe(head, "--format", "json", burnt["sid"])
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["submission_id"] == burnt["sid"]
    missing = describe(head, "no-such-job")
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_deleting_a_job_deletes_its_provenance(client, head, tmp_path) -> None:
    sid = client.submit_job(entrypoint=script(tmp_path, "pass"))
    wait_ended(client, sid)
    key = job_state.record_key(sid)
    assert internal_kv._internal_kv_get(key, namespace=job_state.PROVENANCE_NAMESPACE) is not None
    assert client.delete_job(sid)
    assert internal_kv._internal_kv_get(key, namespace=job_state.PROVENANCE_NAMESPACE) is None
    status, body = request(head, "GET", f"/api/jobs/{sid}/provenance")
    assert status == 404 and "does not exist" in body["error"]
