"""pip runtime envs for submitted jobs with real packages from the package registry.

Marked ``network``: outside the default run; CI runs them in their own step
(``pytest -m network``)."""

from __future__ import annotations

import shlex
import sys
import uuid

import pytest

from manta.job_submission import JobStatus, JobSubmissionClient
from tests.polling import wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(300)]

PACKAGE = "emoji==2.14.1"


def run(client: JobSubmissionClient, code: str, runtime_env: dict) -> tuple[JobStatus, str, str]:
    job = client.submit_job(
        entrypoint=f"python -c {shlex.quote(code)}",
        runtime_env=runtime_env,
        submission_id=f"pip-{uuid.uuid4().hex[:8]}",
    )
    status = wait_until(
        lambda: (s := client.get_job_status(job)).is_terminal() and s, 240, f"job {job} to end"
    )
    return status, client.get_job_logs(job), client.get_job_info(job).message or ""


def test_pip_package_from_the_registry_is_installed_for_the_job_and_its_tasks(client) -> None:
    code = (
        "import emoji, sys, manta\n"
        "manta.init()\n"
        "@manta.remote\n"
        "def in_task():\n"
        "    import emoji\n"
        "    return emoji.__version__\n"
        "print('driver', emoji.emojize(':thumbs_up:'), sys.prefix)\n"
        "print('task', manta.get(in_task.remote()))\n"
    )
    status, logs, message = run(client, code, {"pip": [PACKAGE]})
    assert status is JobStatus.SUCCEEDED, message
    assert "driver 👍" in logs and "task 2.14.1" in logs
    assert "runtime_resources" in logs  # the driver ran in the job's venv, not the base env
    assert sys.prefix not in logs.split("driver", 1)[1].split("\n", 1)[0]


def test_a_package_that_does_not_exist_fails_the_job_with_pips_words(client) -> None:
    status, _, message = run(client, "print('never')", {"pip": ["manta-no-such-package-xyz==0.0.1"]})
    assert status is JobStatus.FAILED
    assert "No matching distribution found for manta-no-such-package-xyz==0.0.1" in message
