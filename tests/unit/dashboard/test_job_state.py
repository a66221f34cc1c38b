"""The jobs service's decisions: ids, status changes, placement, messages, package GC."""

from __future__ import annotations

import pytest

from manta.dashboard import job_state
from manta.job_submission.models import JobDetails, JobInfo, JobStatus, JobType


def test_new_ids_are_valid_and_distinct() -> None:
    ids = {job_state.new_submission_id() for _ in range(100)}
    assert len(ids) == 100 and all(job_state.check_submission_id(i) is None for i in ids)


@pytest.mark.parametrize("bad", ["", "..", ".", "a/b", "../x", "x" * 129, "sp ace", "é"])
def test_ids_that_could_escape_a_file_name_are_refused(bad: str) -> None:
    assert "invalid submission_id" in (job_state.check_submission_id(bad) or "")


def test_advance_sets_times_and_never_leaves_an_end() -> None:
    info = JobInfo(JobStatus.PENDING, "true")
    running = job_state.advance(info, JobStatus.RUNNING, 1000)
    assert running is not None and running.start_time == 1000 and running.end_time is None
    assert info.status is JobStatus.PENDING  # a new record; the old one is left alone
    done = job_state.advance(running, JobStatus.SUCCEEDED, 2000, driver_exit_code=0)
    assert done is not None and done.end_time == 2000 and done.start_time == 1000
    for late in (JobStatus.RUNNING, JobStatus.FAILED, JobStatus.STOPPED):
        assert job_state.advance(done, late, 3000) is None


def test_a_job_without_entrypoint_resources_is_pinned_to_the_head() -> None:
    plain = job_state.supervisor_options(JobInfo(JobStatus.PENDING, "x"), "id1", "ab" * 28)
    assert plain["num_cpus"] == 0 and plain["lifetime"] == "detached" and plain["max_restarts"] == 0
    assert plain["scheduling_strategy"].node_id == "ab" * 28 and plain["scheduling_strategy"].soft is False
    wants = JobInfo(JobStatus.PENDING, "x", entrypoint_num_cpus=1, entrypoint_resources={"w": 1})
    placed = job_state.supervisor_options(wants, "id2", "ab" * 28)
    assert "scheduling_strategy" not in placed and placed["num_cpus"] == 1 and placed["resources"] == {"w": 1}


def test_messages() -> None:
    assert (
        job_state.failure_message(3, "")
        == "Job entrypoint command failed with exit code 3, and it printed nothing."
    )
    assert job_state.failure_message(1, "boom\n").endswith("chars):\nboom\n")
    pending = job_state.pending_message(
        JobInfo(JobStatus.PENDING, "x", entrypoint_num_gpus=1, runtime_env={"pip": []})
    )
    assert "waiting for resources" in pending and "runtime environment" in pending


def test_unused_packages_are_those_no_remaining_job_uses() -> None:
    a, b, c = (f"gcs://_manta_pkg_{ch * 32}.zip" for ch in "abc")
    deleted = {"working_dir": a, "py_modules": [b, "/local/path"]}
    assert job_state.unused_packages(deleted, [{"working_dir": b}, None, {"py_modules": [c]}]) == {a}
    assert job_state.unused_packages(None, []) == set()


def test_details_round_trip_through_json() -> None:
    details = JobDetails(
        status="RUNNING",
        entrypoint="x",
        submission_id="s",
        driver_info={"id": "1", "node_ip_address": "h", "pid": "2"},
    )
    again = JobDetails.from_json(details.to_json())
    assert again.status is JobStatus.RUNNING and again.type is JobType.SUBMISSION
    assert again.driver_info is not None and again.driver_info.pid == "2"
    assert (
        str(JobStatus.FAILED) == "FAILED"
        and JobStatus.STOPPED.is_terminal()
        and not JobStatus.RUNNING.is_terminal()
    )


def test_what_ships_code() -> None:
    assert job_state.uses_packages({"working_dir": "/src"}) and job_state.uses_packages({"py_modules": ["m"]})
    assert not job_state.uses_packages({"env_vars": {"A": "1"}}) and not job_state.uses_packages(None)
