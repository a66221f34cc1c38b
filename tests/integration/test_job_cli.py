"""``manta job ...`` as a user runs it: a separate process against a real head, checked by
its output and exit status."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import uuid
from typing import Any

import pytest

from manta.job_submission import JobStatus
from tests.polling import wait_until

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def manta_job(head):
    """Run ``manta job ARGS`` against the head (its address and token file given, so no
    other cluster on this host is picked up)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("MANTA_ADDRESS", "RAY_ADDRESS", "MANTA_AUTH_TOKEN")
    }
    connect = [
        "--address",
        f"http://{head.dashboard_url}",
        "--token-file",
        os.path.join(head["session_dir"], "token"),
    ]

    def run(
        command: str, *args: str, connect_args: list[str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        options = connect if connect_args is None else connect_args
        return subprocess.run(
            [sys.executable, "-m", "manta.cli.main", "job", command, *options, *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=REPO_ROOT,
        )

    return run


def submitted_id(output: str) -> str:
    match = re.search(r"Job '([^']+)' submitted successfully", output)
    assert match, output
    return match.group(1)


def test_submit_follows_a_successful_job(manta_job):
    result = manta_job(
        "submit", "--", sys.executable, "-c", "import manta; manta.init(); print('hello', 'from the job')"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    sid = submitted_id(out)
    assert out.index("submitted successfully") < out.index("hello from the job") < out.index("succeeded")
    assert f"Job '{sid}' succeeded" in out


def test_submit_reports_a_failed_job(manta_job):
    code = "import sys; print('cli-failure-marker', file=sys.stderr); sys.exit(5)"
    result = manta_job("submit", "--", sys.executable, "-c", code)
    assert result.returncode == 1
    assert "failed" in result.stdout and "exit code 5" in result.stdout
    assert result.stdout.count("cli-failure-marker") >= 2  # the streamed log, then the status message


def test_submit_options_and_inspection_commands(manta_job, client, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "data.txt").write_text("from the working dir\n")
    env_file = tmp_path / "env.yaml"
    env_file.write_text("env_vars:\n  CLI_TEST_VAR: from-yaml\n")
    sid = f"cli-{uuid.uuid4().hex[:8]}"
    code = "import os; print(open('data.txt').read().strip(), os.environ['CLI_TEST_VAR'])"
    result = manta_job(
        "submit",
        "--no-wait",
        "--submission-id",
        sid,
        "--working-dir",
        str(work),
        "--runtime-env",
        str(env_file),
        "--metadata-json",
        '{"team": "cli"}',
        "--entrypoint-num-cpus",
        "0.5",
        "--",
        sys.executable,
        "-c",
        code,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert submitted_id(result.stdout) == sid
    assert "Tailing logs" not in result.stdout
    wait_until(lambda: client.get_job_status(sid).is_terminal(), timeout=30, what="the job's end")
    info = client.get_job_info(sid)
    assert info.status is JobStatus.SUCCEEDED, info.message
    assert info.metadata == {"team": "cli"} and info.entrypoint_num_cpus == 0.5

    status = manta_job("status", sid)
    assert status.returncode == 0 and f"Job '{sid}' succeeded" in status.stdout
    logs = manta_job("logs", sid)
    assert logs.returncode == 0 and logs.stdout == "from the working dir from-yaml\n"
    followed = manta_job("logs", "--follow", sid)
    assert followed.returncode == 0 and followed.stdout == logs.stdout
    listed = manta_job("list")
    assert listed.returncode == 0 and re.search(rf"^{re.escape(sid)}\s+SUCCEEDED\s", listed.stdout, re.M)

    deleted = manta_job("delete", sid)
    assert deleted.returncode == 0 and "deleted" in deleted.stdout
    assert sid not in manta_job("list").stdout


def test_stop_a_running_job(manta_job, client, tmp_path):
    started = tmp_path / "started"
    code = f"import time; open({str(started)!r}, 'w').close(); time.sleep(300)"
    submitted = manta_job("submit", "--no-wait", "--", sys.executable, "-c", code)
    sid = submitted_id(submitted.stdout)
    wait_until(started.exists, timeout=30, what="the job's start")
    delete_running = manta_job("delete", sid)
    assert delete_running.returncode == 1 and "400" in delete_running.stderr
    result = manta_job("stop", sid)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Job '{sid}' was stopped" in result.stdout
    assert client.get_job_status(sid) is JobStatus.STOPPED
    again = manta_job("stop", "--no-wait", sid)
    assert again.returncode == 0 and "already ended" in again.stdout


def test_errors_exit_nonzero_with_the_reason(manta_job, head, tmp_path):
    for command in ("status", "stop", "delete", "logs"):
        result = manta_job(command, "no-such-job")
        assert result.returncode == 1, command
        assert "does not exist" in result.stderr, (command, result.stderr)

    wrong_token = tmp_path / "token"
    wrong_token.write_text("not-the-token\n")
    refused = manta_job(
        "submit",
        "--",
        "true",
        connect_args=["--address", head.dashboard_url, "--token-file", str(wrong_token)],
    )
    assert refused.returncode == 1 and "401" in refused.stderr
    assert "submitted" not in refused.stdout

    unreachable = manta_job("list", connect_args=["--address", "127.0.0.1:1"])
    assert unreachable.returncode == 1 and "127.0.0.1:1" in unreachable.stderr

    bad_json = manta_job("submit", "--entrypoint-resources", "{not json", "--", "true")
    assert bad_json.returncode == 2 and "--entrypoint-resources" in bad_json.stderr


def test_entrypoint_words_are_quoted_for_the_shell(manta_job, client):
    # Each word stays one argument, spaces and shell characters included.
    result = manta_job(
        "submit", "--", sys.executable, "-c", "import sys; print(sys.argv[1:])", "a b", "$HOME;x"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "['a b', '$HOME;x']" in result.stdout
    info: Any = client.get_job_info(submitted_id(result.stdout))
    assert info.entrypoint == shlex.join(
        [sys.executable, "-c", "import sys; print(sys.argv[1:])", "a b", "$HOME;x"]
    )
