"""JobSubmissionClient against a real head: its HTTP service, supervisors and entrypoint
processes, no fakes. Entrypoints are small scripts written to tmp_path, so no test
depends on shell quoting it does not mean to test."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
import textwrap
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

import manta
from manta.job_submission import JobDetails, JobStatus, JobSubmissionClient
from tests.http_api import request
from tests.polling import process_gone, touch, wait_for_files, wait_until

PYTHON = shlex.quote(sys.executable)


def script(tmp_path: Any, body: str, *args: Any) -> str:
    """An entrypoint that runs ``body`` as a Python file with ``args``."""
    path = tmp_path / f"job_{uuid.uuid4().hex[:8]}.py"
    path.write_text(textwrap.dedent(body))
    return " ".join([PYTHON, shlex.quote(str(path)), *(shlex.quote(str(a)) for a in args)])


def wait_ended(client: JobSubmissionClient, submission_id: str, timeout: float = 30) -> JobDetails:
    return wait_until(  # type: ignore[no-any-return]
        lambda: (info := client.get_job_info(submission_id)).status.is_terminal() and info,
        timeout=timeout,
        what=f"the end of job {submission_id}",
    )


def test_driver_entrypoint_succeeds_and_logs(client, tmp_path):
    entrypoint = script(
        tmp_path,
        """
        import manta
        manta.init()

        @manta.remote
        def add(a, b):
            return a + b

        print("job says", manta.get(add.remote(20, 22)))
        """,
    )
    sid = client.submit_job(entrypoint=entrypoint, metadata={"owner": "tests"})
    info = wait_ended(client, sid)
    assert info.status is JobStatus.SUCCEEDED, info.message
    assert info.driver_exit_code == 0
    assert info.metadata == {"owner": "tests"}
    assert info.start_time is not None and info.end_time is not None and info.start_time <= info.end_time
    assert "job says 42" in client.get_job_logs(sid)
    assert client.get_job_status(sid) is JobStatus.SUCCEEDED
    assert sid in {j.submission_id for j in client.list_jobs()}


def test_failing_entrypoint_reports_its_output(client, tmp_path):
    entrypoint = script(
        tmp_path,
        """
        import sys
        print("unique-failure-marker", file=sys.stderr)
        sys.exit(3)
        """,
    )
    info = wait_ended(client, client.submit_job(entrypoint=entrypoint))
    assert info.status is JobStatus.FAILED
    assert info.driver_exit_code == 3
    assert "unique-failure-marker" in (info.message or "")


def test_missing_command_fails(client):
    info = wait_ended(client, client.submit_job(entrypoint="nonexistent-cmd-xyz --flag"))
    assert info.status is JobStatus.FAILED
    assert "nonexistent-cmd-xyz" in (info.message or "")


def test_duplicate_submission_id_is_refused(client):
    sid = f"dup-{uuid.uuid4().hex[:8]}"
    assert client.submit_job(entrypoint="true", submission_id=sid) == sid
    with pytest.raises(RuntimeError, match=r"409.*already exists"):
        client.submit_job(entrypoint="true", submission_id=sid)
    assert wait_ended(client, sid).status is JobStatus.SUCCEEDED


def test_stop_ends_the_whole_process_tree(client, tmp_path):
    pid_file = tmp_path / "child.pid"
    entrypoint = script(
        tmp_path,
        """
        import subprocess, sys
        child = subprocess.Popen([sys.executable, "-c",
            "import os, sys, time; open(sys.argv[1] + '.tmp', 'w').write(str(os.getpid())); "
            "os.rename(sys.argv[1] + '.tmp', sys.argv[1]); time.sleep(300)", sys.argv[1]])
        child.wait()
        """,
        pid_file,
    )
    sid = client.submit_job(entrypoint=entrypoint)
    wait_for_files(pid_file)
    child_pid = int(pid_file.read_text())
    assert client.get_job_status(sid) is JobStatus.RUNNING
    assert client.stop_job(sid) is True
    info = wait_ended(client, sid)
    assert info.status is JobStatus.STOPPED
    wait_until(lambda: process_gone(child_pid), timeout=10, what=f"the end of the job's child {child_pid}")
    assert client.stop_job(sid) is False  # already ended


def test_unknown_job_ids(client):
    for call in (client.stop_job, client.delete_job, client.get_job_info, client.get_job_logs):
        with pytest.raises(RuntimeError, match=r"404.*does not exist"):
            call("no-such-job")
    # Quoted into one path segment: it cannot reach another route.
    with pytest.raises(RuntimeError, match="404"):
        client.get_job_info("no/such?job#x")


def test_delete_only_ended_jobs(client, tmp_path):
    go = tmp_path / "go"
    entrypoint = script(
        tmp_path,
        """
        import os, sys, time
        while not os.path.exists(sys.argv[1]):
            time.sleep(0.05)
        print("released")
        """,
        go,
    )
    sid = client.submit_job(entrypoint=entrypoint)
    with pytest.raises(RuntimeError, match=r"400.*(stop it|terminal)"):
        client.delete_job(sid)
    touch(go)
    assert wait_ended(client, sid).status is JobStatus.SUCCEEDED
    assert client.delete_job(sid) is True
    with pytest.raises(RuntimeError, match="404"):
        client.get_job_info(sid)
    assert sid not in {j.submission_id for j in client.list_jobs()}


def test_tail_follows_a_running_job_to_its_end(client, tmp_path):
    go = tmp_path / "go"
    entrypoint = script(
        tmp_path,
        """
        import os, sys, time
        print("first line", flush=True)
        while not os.path.exists(sys.argv[1]):
            time.sleep(0.05)
        print("second line")
        """,
        go,
    )
    sid = client.submit_job(entrypoint=entrypoint)

    async def follow() -> str:
        text = ""
        async for chunk in client.tail_job_logs(sid):
            text += chunk
            if "first line" in text and not go.exists():
                # Only released once the stream has shown output of the running job.
                assert client.get_job_status(sid) is JobStatus.RUNNING
                touch(go)
        return text

    text = asyncio.run(asyncio.wait_for(follow(), 30))
    assert text.index("first line") < text.index("second line")
    assert client.get_job_status(sid) is JobStatus.SUCCEEDED


def test_tail_of_unknown_job_raises(client):
    async def follow() -> None:
        async for _ in client.tail_job_logs("no-such-job"):
            pass

    with pytest.raises(RuntimeError, match=r"404.*does not exist"):
        asyncio.run(follow())


def _raw_request(head: Any, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://{head.dashboard_url}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        with e:
            return e.code, json.loads(e.read())


def test_requests_without_the_token_are_refused(head, client, tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    body = {"entrypoint": f"touch {shlex.quote(str(marker))}", "submission_id": f"nt-{uuid.uuid4().hex[:8]}"}
    for headers in ({}, {"Authorization": "Bearer not-the-token"}):
        status, reply = _raw_request(head, "POST", "/api/jobs/", body, headers)
        assert status == 401 and "token" in reply["error"]
    with pytest.raises(RuntimeError, match="401"):
        JobSubmissionClient(head.dashboard_url, headers={"Authorization": "Bearer not-the-token"})
    monkeypatch.setenv("MANTA_AUTH_TOKEN", "not-the-token-either")
    with pytest.raises(RuntimeError, match="401"):
        JobSubmissionClient(head.dashboard_url)
    assert body["submission_id"] not in {j.submission_id for j in client.list_jobs()}
    assert not marker.exists()


def test_working_dir_is_uploaded_without_excluded_files(client, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "helper.py").write_text("GREETING = 'hello from working_dir'\n")
    (work / "bulky.bin").write_bytes(b"x" * 1000)
    code = "import os, helper; print(helper.GREETING); print('bulky present:', os.path.exists('bulky.bin'))"
    sid = client.submit_job(
        entrypoint=f"{PYTHON} -c {shlex.quote(code)}",
        runtime_env={"working_dir": str(work), "excludes": ["*.bin"]},
    )
    info = wait_ended(client, sid)
    logs = client.get_job_logs(sid)
    assert info.status is JobStatus.SUCCEEDED, f"{info.message}\n{logs}"
    assert "hello from working_dir" in logs and "bulky present: False" in logs
    # The record holds the uploaded package, not this machine's path.
    assert info.runtime_env is not None
    assert info.runtime_env["working_dir"].startswith("gcs://_manta_pkg_")
    assert "excludes" not in info.runtime_env


def test_py_modules_are_importable_by_the_entrypoint(client, tmp_path):
    package = tmp_path / "lib" / "mypkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("NAME = 'mypkg from py_modules'\n")
    sid = client.submit_job(
        entrypoint=f"{PYTHON} -c " + shlex.quote("import mypkg; print(mypkg.NAME)"),
        runtime_env={"py_modules": [str(package)]},
    )
    info = wait_ended(client, sid)
    assert info.runtime_env is not None
    assert all(m.startswith("gcs://_manta_pkg_") for m in info.runtime_env["py_modules"])
    assert info.status is JobStatus.SUCCEEDED, info.message
    assert "mypkg from py_modules" in client.get_job_logs(sid)


def test_missing_working_dir_is_refused_before_submitting(client, tmp_path):
    with pytest.raises(ValueError, match="not an existing directory"):
        client.submit_job(entrypoint="true", runtime_env={"working_dir": str(tmp_path / "absent")})


def test_env_vars_reach_the_entrypoint(client):
    entrypoint = f"{PYTHON} -c " + shlex.quote("import os; print('value:', os.environ['JOB_TEST_VAR'])")
    sid = client.submit_job(entrypoint=entrypoint, runtime_env={"env_vars": {"JOB_TEST_VAR": "forty-two"}})
    assert wait_ended(client, sid).status is JobStatus.SUCCEEDED
    assert "value: forty-two" in client.get_job_logs(sid)


def test_a_drivers_own_runtime_env_merges_over_the_submitted_one(client, tmp_path):
    work = tmp_path / "merge_wd"
    work.mkdir()
    (work / "shipped_helper.py").write_text("WHERE = 'working_dir'\n")
    (work / "main.py").write_text(
        "import os, manta\n"
        "manta.init(runtime_env={'env_vars': {'OWN': 'own'}})\n"
        "@manta.remote\n"
        "def probe():\n"
        "    import shipped_helper\n"
        "    return shipped_helper.WHERE, os.environ.get('OWN'), os.environ.get('SUBMITTED')\n"
        "print('task sees', manta.get(probe.remote()))\n"
    )
    sid = client.submit_job(
        entrypoint=f"{PYTHON} main.py",
        runtime_env={"working_dir": str(work), "env_vars": {"SUBMITTED": "sub"}},
    )
    assert wait_ended(client, sid).status is JobStatus.SUCCEEDED, client.get_job_logs(sid)
    assert "task sees ('working_dir', 'own', 'sub')" in client.get_job_logs(sid)


def test_address_forms(head, monkeypatch):
    assert JobSubmissionClient(f"http://{head.dashboard_url}/").get_version() == "1"
    # A job's entrypoint has MANTA_ADDRESS set to the gcs: the client finds the dashboard.
    monkeypatch.setenv("MANTA_ADDRESS", head["gcs_address"])
    assert JobSubmissionClient().address == f"http://{head.dashboard_url}"
    with pytest.raises(ConnectionError, match=r"127\.0\.0\.1:1\b.*MANTA_ADDRESS"):
        JobSubmissionClient("127.0.0.1:1")
    with pytest.raises(ValueError, match="http"):
        JobSubmissionClient("ray://127.0.0.1:10001")


def test_working_dir_over_the_limit_is_refused_naming_the_largest_files(client, tmp_path):
    work = tmp_path / "big_wd"
    work.mkdir()
    (work / "main.py").write_text("print('never')\n")
    with open(work / "dataset.bin", "wb") as f:
        f.truncate(101 * 1024 * 1024)  # sparse: nothing is written, but its size counts
    jobs_before = len(client.list_jobs())
    with pytest.raises(ValueError) as info:
        client.submit_job(entrypoint=f"{PYTHON} main.py", runtime_env={"working_dir": str(work)})
    text = str(info.value)
    assert "over the limit of 100" in text and "dataset.bin (101" in text and "excludes" in text
    assert len(client.list_jobs()) == jobs_before  # nothing was submitted
    # Leaving it out with excludes makes it fit.
    sid = client.submit_job(
        entrypoint=f"{PYTHON} main.py", runtime_env={"working_dir": str(work), "excludes": ["*.bin"]}
    )
    assert wait_ended(client, sid).status is JobStatus.SUCCEEDED


def test_a_follower_that_disconnects_mid_stream_leaves_the_service_healthy(head, client, tmp_path):
    import aiohttp

    entrypoint = script(
        tmp_path,
        """
        import time
        for i in range(400):
            print("line", i, flush=True)
            time.sleep(0.01)
        """,
    )
    sid = client.submit_job(entrypoint=entrypoint)
    token = (Path(head["session_dir"]) / "token").read_text().strip()

    async def drop_after_first_message() -> str:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
            ws = await session.ws_connect(f"http://{head.dashboard_url}/api/jobs/{sid}/logs/tail")
            first = await ws.receive_str()
            ws._response.connection.transport.abort()  # gone without a close handshake
            return first

    assert "line" in asyncio.run(asyncio.wait_for(drop_after_first_message(), 30))
    assert wait_ended(client, sid).status is JobStatus.SUCCEEDED
    assert "line 399" in client.get_job_logs(sid)
    log = (Path(head["session_dir"]) / "logs" / "dashboard.err").read_text()
    assert "Traceback" not in log and "internal error" not in log


def test_deleting_the_last_job_of_a_package_removes_the_package(head, client, tmp_path):
    work = tmp_path / "gc_wd"
    work.mkdir()
    (work / "main.py").write_text(f"print('gc {uuid.uuid4().hex}')\n")  # content no other test uploads
    first = client.submit_job(entrypoint=f"{PYTHON} main.py", runtime_env={"working_dir": str(work)})
    second = client.submit_job(entrypoint=f"{PYTHON} main.py", runtime_env={"working_dir": str(work)})
    uri = client.get_job_info(first).runtime_env["working_dir"]
    assert client.get_job_info(second).runtime_env["working_dir"] == uri  # uploaded once, shared
    path = "/api/packages/gcs/" + uri.split("://", 1)[1]
    token = (Path(head["session_dir"]) / "token").read_text().strip()
    api = {"url": f"http://{head.dashboard_url}", "token": token}
    for sid in (first, second):
        assert wait_ended(client, sid).status is JobStatus.SUCCEEDED
    assert client.delete_job(first)
    assert request(api, "GET", path)[0] == 200  # the second job still uses it
    assert client.delete_job(second)
    assert request(api, "GET", path)[0] == 404


def test_a_redirect_is_refused_so_the_token_never_follows_it():
    import http.server
    import threading

    seen: list[str | None] = []

    class Elsewhere(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    other = http.server.HTTPServer(("127.0.0.1", 0), Elsewhere)

    class Redirect(Elsewhere):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{other.server_port}{self.path}")
            self.end_headers()

    redirecting = http.server.HTTPServer(("127.0.0.1", 0), Redirect)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (other, redirecting)]
    for t in threads:
        t.start()
    try:
        with pytest.raises(RuntimeError, match="302"):
            JobSubmissionClient(
                f"http://127.0.0.1:{redirecting.server_port}", headers={"Authorization": "Bearer s3cret"}
            )
        assert seen == []
    finally:
        for server, thread in zip((other, redirecting), threads, strict=True):
            server.shutdown()
            server.server_close()
            thread.join()


def test_drivers_are_listed_and_linked_to_their_submissions(client, head):
    sid = client.submit_job(
        entrypoint=f"{PYTHON} -c " + shlex.quote("import manta; manta.init(); print('up')")
    )
    assert wait_ended(client, sid).status is JobStatus.SUCCEEDED
    submitted = client.get_job_info(sid)
    assert submitted.type.value == "SUBMISSION" and submitted.job_id and submitted.driver_info is not None
    jobs = {(j.type.value, j.submission_id, j.job_id) for j in client.list_jobs()}
    # This test module's own driver is listed as a DRIVER job; the submitted job's driver
    # only through its submission; the service's own driver not at all.
    own = manta.get_runtime_context().get_job_id()
    assert ("DRIVER", None, own) in jobs
    assert not any(t == "DRIVER" and j == submitted.job_id for t, _, j in jobs)
    assert client.get_job_info(own).type.value == "DRIVER"
    assert client.get_address() == f"http://{head.dashboard_url}"
