"""Submitted jobs on a two-node cluster when things go wrong: entrypoint resources that
only a worker node has, a supervisor or a driver that dies, and the head's gcs and HTTP
service restarting under a running job (job records are on sqlite)."""

from __future__ import annotations

import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from manta.cluster_utils import Cluster
from tests.http_api import request
from tests.polling import process_gone, wait_until

pytestmark = pytest.mark.timeout(180)

START_TIMEOUT_S = 4


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory):
    db = tmp_path_factory.mktemp("gcs") / "gcs.db"
    cluster = Cluster()
    try:
        # A short start timeout, so that a job no node can place fails within the test.
        config = {"job_start_timeout_s": START_TIMEOUT_S}
        node = cluster.add_node(
            num_cpus=1, include_dashboard=True, storage=f"sqlite:///{db}", _system_config=config
        )
        worker = cluster.add_node(num_cpus=1, resources={"w": 1})
        token = Path(node.session_dir, "token").read_text().strip()
        yield {
            "url": f"http://{node.dashboard_url}",
            "token": token,
            "cluster": cluster,
            "node": node,
            "worker": worker,
            "session_dir": node.session_dir,
        }
    finally:
        cluster.shutdown()


def submit(head: dict[str, Any], entrypoint: str, **fields: Any) -> str:
    status, body = request(head, "POST", "/api/jobs/", {"entrypoint": entrypoint, **fields})
    assert status == 200, body
    return str(body["submission_id"])


def info(head: dict[str, Any], job: str) -> dict[str, Any]:
    status, body = request(head, "GET", f"/api/jobs/{job}")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def wait_status(head: dict[str, Any], job: str, *wanted: str, timeout: float = 60) -> dict[str, Any]:
    return wait_until(
        lambda: (i := info(head, job))["status"] in wanted and i, timeout, f"job {job} in {wanted}"
    )


def python(code: str) -> str:
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def test_entrypoint_resources_place_the_job_on_a_node_that_has_them(head) -> None:
    job = submit(
        head,
        python(
            "import manta, os; manta.init(); print('driver on', os.getpid()); print(manta.get_runtime_context().get_node_id())"
        ),
        entrypoint_resources={"w": 1},
    )
    done = wait_status(head, job, "SUCCEEDED", "FAILED")
    assert done["status"] == "SUCCEEDED", done["message"]
    assert done["driver_node_id"] == head["worker"].node_id
    # The log lives on the worker node; the head reads it from there after the job ended.
    _, logs = request(head, "GET", f"/api/jobs/{job}/logs")
    assert "driver on" in logs["logs"] and head["worker"].node_id in logs["logs"]


def test_unplaceable_job_stays_pending_and_can_be_stopped(head) -> None:
    job = submit(head, "true", entrypoint_resources={"nowhere": 1})
    time.sleep(1.0)
    pending = info(head, job)
    assert pending["status"] == "PENDING" and "waiting for resources" in pending["message"]
    assert request(head, "POST", f"/api/jobs/{job}/stop")[1] == {"stopped": True}
    assert wait_status(head, job, "STOPPED")["end_time"] is not None


def test_a_job_that_never_starts_fails_after_the_start_timeout(head) -> None:
    job = submit(head, "true", entrypoint_resources={"nowhere": 1})
    failed = wait_status(head, job, "FAILED", timeout=START_TIMEOUT_S + 30)
    assert failed["error_type"] == "JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE"
    assert f"did not start within {START_TIMEOUT_S} s" in failed["message"]


def test_a_killed_supervisor_fails_the_job_and_its_processes_end(head, tmp_path) -> None:
    pidfile = tmp_path / "pids"
    # The supervisor is the first ancestor that is not the shell running the entrypoint;
    # "; true" keeps the shell from exec-ing python, so python is the shell's child and
    # outlives the shell when the supervisor's death takes the shell with it.
    code = (
        "import os, psutil, time\n"
        "p = psutil.Process().parent()\n"
        "while p.name() in ('sh', 'dash', 'bash'): p = p.parent()\n"
        f"open({str(pidfile)!r}, 'w').write(f'{{p.pid}} {{os.getpid()}}')\n"
        "time.sleep(120)"
    )
    job = submit(head, python(code) + "; true")
    wait_until(lambda: pidfile.exists() and pidfile.read_text(), 30, "the entrypoint to start")
    supervisor, driver = map(int, pidfile.read_text().split())
    os.kill(supervisor, signal.SIGKILL)
    failed = wait_status(head, job, "FAILED")
    assert "Job supervisor actor died" in failed["message"]
    assert failed["error_type"] == "JOB_SUPERVISOR_ACTOR_DIED"
    wait_until(lambda: process_gone(driver), 20, "the orphaned entrypoint to be ended")


def test_a_killed_driver_fails_the_job_with_its_exit_code(head, tmp_path) -> None:
    pidfile = tmp_path / "driver"
    job = submit(
        head,
        python(
            f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); print('up', flush=True); time.sleep(60)"
        ),
    )
    wait_until(lambda: pidfile.exists() and pidfile.read_text(), 30, "the driver to start")
    os.kill(int(pidfile.read_text()), signal.SIGKILL)
    failed = wait_status(head, job, "FAILED")
    # The shell running the entrypoint reports a killed child as 128 + 9.
    assert failed["driver_exit_code"] in (-signal.SIGKILL, 128 + signal.SIGKILL)
    assert f"failed with exit code {failed['driver_exit_code']}" in failed["message"]
    assert "up" in failed["message"]


def test_a_job_survives_a_gcs_restart_and_its_status_stays_right(head, tmp_path) -> None:
    go = tmp_path / "go"
    job = submit(
        head,
        python(
            "import manta, os, time\n"
            "manta.init()\n"
            f"while not os.path.exists({str(go)!r}): time.sleep(0.1)\n"
            "print('sum', manta.get(manta.remote(lambda: 21).remote()) * 2)"
        ),
    )
    wait_status(head, job, "RUNNING")
    head["node"].restart_gcs()
    after = info(head, job)
    assert after["status"] == "RUNNING", after  # read back from the restarted gcs's storage
    status, provenance = request(head, "GET", f"/api/jobs/{job}/provenance")  # so is its provenance
    assert status == 200 and provenance["status"] == "RUNNING" and provenance["packages_hash"], provenance
    go.write_text("")
    done = wait_status(head, job, "SUCCEEDED", "FAILED", timeout=90)
    assert done["status"] == "SUCCEEDED", done["message"]
    assert "sum 42" in request(head, "GET", f"/api/jobs/{job}/logs")[1]["logs"]


def test_the_http_service_restarting_keeps_control_of_running_jobs(head) -> None:
    job = submit(head, python("import time; print('sleeping', flush=True); time.sleep(120)"))
    wait_status(head, job, "RUNNING")
    head["node"].restart_dashboard()
    assert info(head, job)["status"] == "RUNNING"
    assert request(head, "POST", f"/api/jobs/{job}/stop")[1] == {"stopped": True}
    stopped = wait_status(head, job, "STOPPED")
    assert stopped["message"] == "Job was intentionally stopped."
