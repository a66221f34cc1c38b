"""A job's provenance record: what it is made of, how it is amended, the package hash, and
how samples of a process tree fold into its CPU time and peak memory."""

from __future__ import annotations

import hashlib
import subprocess
import sys

from manta.dashboard import job_state
from manta.dashboard.job_supervisor import TreeSampler
from manta.job_submission.models import JobInfo, JobStatus


def test_packages_digest_hashes_the_sorted_lines() -> None:
    digest, count = job_state.packages_digest([("zlib-ng", "1.0"), ("Aiohttp", "3.9.1")])
    assert count == 2
    assert digest == hashlib.sha256(b"aiohttp==3.9.1\nzlib-ng==1.0").hexdigest()


def test_packages_digest_ignores_order_and_spelling() -> None:
    a = job_state.packages_digest([("typing_extensions", "4.0"), ("PyYAML", "6.0")])
    b = job_state.packages_digest([("pyyaml", "6.0"), ("Typing.Extensions", "4.0")])
    assert a == b


def test_packages_digest_counts_a_name_installed_twice_as_the_one_found_first() -> None:
    # A venv with --system-site-packages: its own copy comes first on sys.path.
    twice = job_state.packages_digest([("numpy", "2.0"), ("numpy", "1.26")])
    assert twice == job_state.packages_digest([("numpy", "2.0")])
    assert twice[1] == 1


def test_packages_digest_of_nothing() -> None:
    assert job_state.packages_digest([]) == (hashlib.sha256(b"").hexdigest(), 0)


def sample(pid: int, cpu: float, rss: int, started: float = 1.0) -> job_state.ProcessSample:
    return job_state.ProcessSample(pid, started, cpu, rss)


def test_tally_keeps_each_process_s_largest_cpu_time_and_counts_those_that_ended() -> None:
    tally = job_state.UsageTally()
    tally.observe([sample(1, 0.1, 100), sample(2, 0.5, 200)])
    tally.observe([sample(1, 0.4, 100)])  # 2 ended between samples: its 0.5 s still counts
    assert tally.usage()["cpu_seconds"] == 0.9


def test_tally_tells_a_reused_pid_from_the_process_that_had_it() -> None:
    tally = job_state.UsageTally()
    tally.observe([sample(7, 2.0, 0, started=1.0)])
    tally.observe([sample(7, 0.5, 0, started=9.0)])
    assert tally.usage()["cpu_seconds"] == 2.5


def test_tally_peak_is_the_largest_sum_over_one_sample() -> None:
    tally = job_state.UsageTally()
    tally.observe([sample(1, 0, 100), sample(2, 0, 300)])
    tally.observe([sample(1, 0, 350)])  # larger alone, smaller than the first sum
    assert tally.usage()["peak_memory_bytes"] == 400


def test_tally_is_raised_to_what_the_reaped_tree_reports() -> None:
    tally = job_state.UsageTally()
    tally.observe([sample(1, 0.2, 1000)])
    assert tally.usage(reaped_cpu_seconds=0.6, reaped_peak_rss=500) == {
        "cpu_seconds": 0.6,
        "peak_memory_bytes": 1000,
    }
    assert job_state.UsageTally().usage() == {"cpu_seconds": 0.0, "peak_memory_bytes": 0}


def submitted() -> job_state.JobProvenance:
    info = JobInfo(
        JobStatus.PENDING,
        "python run.py",
        runtime_env={"env_vars": {"A": "1"}},
        entrypoint_num_cpus=1.5,
        entrypoint_memory=1 << 30,
        entrypoint_resources={"disk": 1.0},
    )
    return job_state.provenance_at_submit("sid1", info, "alice", "submit", 1234)


def test_provenance_at_submit_holds_who_asked_for_what() -> None:
    p = submitted()
    assert (p.submission_id, p.entrypoint, p.submitter, p.submitter_role) == (
        "sid1",
        "python run.py",
        "alice",
        "submit",
    )
    assert p.runtime_env == {"env_vars": {"A": "1"}} and p.submit_time == 1234
    assert (p.entrypoint_num_cpus, p.entrypoint_num_gpus, p.entrypoint_memory) == (1.5, None, 1 << 30)
    assert p.entrypoint_resources == {"disk": 1.0}
    assert p.status == "PENDING" and p.cpu_seconds is None and p.nodes_used == []


def test_provenance_json_round_trip_ignores_fields_it_does_not_know() -> None:
    p = submitted()
    assert job_state.JobProvenance.from_json(p.to_json()) == p
    assert job_state.JobProvenance.from_json({**p.to_json(), "from_a_newer_head": 1}) == p


def test_amending_adds_nodes_and_replaces_the_rest() -> None:
    p = submitted().amended({"nodes_used": ["n1"], "status": "RUNNING"})
    p = p.amended({"nodes_used": ["n2", "n1"], "status": "SUCCEEDED", "exit_code": 0})
    assert p.nodes_used == ["n1", "n2"]
    assert p.status == "SUCCEEDED" and p.exit_code == 0 and p.submitter == "alice"


def test_record_facts_copy_how_the_job_stands() -> None:
    info = JobInfo(JobStatus.FAILED, "x", start_time=10, end_time=20, driver_exit_code=3)
    assert job_state.record_facts(info) == {
        "status": "FAILED",
        "start_time": 10,
        "end_time": 20,
        "exit_code": 3,
    }


def test_tree_sampler_sees_a_process_until_it_is_gone() -> None:
    # A child that holds 30 MB and then waits for its stdin to close.
    code = "import sys; b = bytearray(30 << 20); b[::4096] = b'x' * len(b[::4096]); print(1, flush=True); sys.stdin.read()"
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"1\n"
        sampler = TreeSampler(proc.pid)
        (seen,) = sampler.sample()
        assert seen.pid == proc.pid and seen.rss_bytes >= 30 << 20 and seen.cpu_seconds > 0
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
    assert sampler.sample() == []
