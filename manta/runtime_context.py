"""``manta.get_runtime_context()``: who and where the calling code runs."""

from __future__ import annotations

import json
import os
from typing import Any

from manta._private.api.context import ensure_initialized


class RuntimeContext:
    """Ids of the current job, task, node and worker, and the resources the task holds."""

    def __init__(self, worker: Any) -> None:
        self._worker = worker

    def _task(self) -> Any:
        ctx = self._worker.context
        return None if self._worker.is_driver else ctx

    def get_job_id(self) -> str:
        return self._worker.job_id.hex()

    def get_task_id(self) -> str | None:
        task = self._task()
        return None if task is None else task.task_id.hex()

    def get_task_name(self) -> str | None:
        task = self._task()
        return None if task is None else task.name

    def get_node_id(self) -> str:
        return self._worker.node_id.hex()

    def get_worker_id(self) -> str:
        return self._worker.worker_id.hex()

    def get_actor_id(self) -> str | None:
        actor_id = self._worker.actor_id
        return None if actor_id is None else actor_id.hex()

    def get_actor_name(self) -> str | None:
        executor = self._worker.executor
        actor = executor.actor if executor is not None else None
        return (actor.spec.name or None) if actor is not None else None

    @property
    def current_actor(self) -> Any:
        """A handle to the actor this code runs in."""
        executor = self._worker.executor
        actor = executor.actor if executor is not None else None
        if actor is None:
            raise RuntimeError("This method is only available in an actor.")
        from manta._private.api.actor import ActorHandle

        spec = actor.spec
        return ActorHandle(spec.actor_id, spec.class_name, spec.methods, spec.max_task_retries, spec.is_async)

    def get_placement_group_id(self) -> str | None:
        return None

    @property
    def namespace(self) -> str:
        return self._worker.namespace

    @property
    def gcs_address(self) -> str:
        return self._worker.session.gcs_address

    def get_assigned_resources(self) -> dict[str, float]:
        task = self._task()
        if task is None:
            raise AssertionError(
                "get_assigned_resources() is only available in a task or actor, not in the driver"
            )
        return dict(task.resources)

    def get_accelerator_ids(self) -> dict[str, list[str]]:
        task = self._task()
        ids: dict[str, list[str]] = {"GPU": []}
        if task is not None:
            ids.update({k: list(v) for k, v in task.instance_ids.items()})
        return ids

    def get_runtime_env_string(self) -> str:
        return json.dumps(self._worker.job_runtime_env or {})

    @property
    def runtime_env(self) -> dict[str, Any]:
        return dict(self._worker.job_runtime_env or {})

    def get_session_name(self) -> str:
        return os.path.basename(self._worker.session.session_dir)

    def get_temp_dir(self) -> str:
        return self._worker.config.tmpdir

    def was_current_actor_reconstructed(self) -> bool:
        return False

    def get(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "job_id": self._worker.job_id,
            "node_id": self._worker.node_id,
            "namespace": self.namespace,
        }
        task = self._task()
        if task is not None:
            result["task_id"] = task.task_id
        return result


def get_runtime_context() -> RuntimeContext:
    return RuntimeContext(ensure_initialized())


def get_gpu_ids() -> list[int]:
    """Indices of the GPUs assigned to the current task (ints, as in Ray)."""
    ids = get_runtime_context().get_accelerator_ids().get("GPU", [])
    return [int(i) if i.isdigit() else i for i in ids]  # type: ignore[misc]
