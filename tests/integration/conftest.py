"""Integration tests run real daemons and workers; most share one cluster per module."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import manta


@pytest.fixture(scope="module")
def head():
    """A 2-CPU local cluster with its HTTP service (the jobs API), shared by a module."""
    context = manta.init(include_dashboard=True, num_cpus=2)
    yield context
    manta.shutdown()


@pytest.fixture(scope="module")
def client(head):
    """A job client for ``head``."""
    from manta.job_submission import JobSubmissionClient

    return JobSubmissionClient(head.dashboard_url)


@pytest.fixture(scope="module")
def cluster():
    """A 2-CPU local cluster shared by the tests of one module."""
    context = manta.init(num_cpus=2, num_gpus=0)
    yield context
    manta.shutdown()


def run_driver(
    code: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as a separate driver script; returns the finished process."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=os.getcwd(),
    )
