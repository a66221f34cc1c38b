"""Submitting jobs to a cluster's head over HTTP (Ray's ``ray.job_submission``)."""

from manta.job_submission.models import DriverInfo, JobDetails, JobErrorType, JobInfo, JobStatus, JobType
from manta.job_submission.sdk import JobSubmissionClient

__all__ = [
    "DriverInfo",
    "JobDetails",
    "JobErrorType",
    "JobInfo",
    "JobStatus",
    "JobSubmissionClient",
    "JobType",
]
