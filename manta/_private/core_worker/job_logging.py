"""A job's ``logging_config`` applied in one of its processes, with the ids of the process
and of the task running in it on each line (see common/logging_config.py)."""

from __future__ import annotations

from typing import Any, Protocol

from manta._private.common import logging_config
from manta._private.common.ids import ActorID, JobID, NodeID, WorkerID
from manta._private.core_worker.task_context import TaskContext


class _Process(Protocol):
    job_id: JobID
    worker_id: WorkerID
    node_id: NodeID
    actor_id: ActorID | None

    @property
    def context(self) -> TaskContext: ...

    def task_running(self) -> bool: ...


def apply_job_logging(process: _Process, settings: Any, own_logger: str | None = None) -> None:
    """Apply ``settings`` (a ``LoggingConfig`` or its dict; nothing when None)."""
    if not settings:
        return

    def context() -> dict[str, str]:
        values = {
            "job_id": process.job_id.hex(),
            "worker_id": process.worker_id.hex(),
            "node_id": process.node_id.hex(),
        }
        if process.actor_id is not None:
            values["actor_id"] = process.actor_id.hex()
        if process.task_running():
            task = process.context
            values["job_id"] = task.job_id.hex()
            values["task_id"] = task.task_id.hex()
            values["task_name"] = task.name
        return values

    logging_config.apply(settings, context, own_logger)
