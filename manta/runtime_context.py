"""``manta.get_runtime_context()``: who and where the calling code runs."""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

from manta._private.api.context import ensure_initialized
from manta._private.common.deprecation import RayDeprecationWarning
from manta._private.common.ids import ActorID, JobID, NodeID, PlacementGroupID, TaskID
from manta._private.common.resources import outside_group


def _deprecated(what: str, instead: str) -> None:
    warnings.warn(
        f"RuntimeContext.{what} is deprecated and may be removed; use {instead} instead",
        RayDeprecationWarning,
        stacklevel=3,
    )


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

    def is_canceled(self) -> bool:
        """Whether the running task has been cancelled (``manta.cancel``): true inside the
        ``except KeyboardInterrupt`` a cancellation raises. False outside a task."""
        task = self._task()
        executor = self._worker.executor
        return task is not None and executor is not None and executor.cancelled == task.task_id

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

    def _placement_group(self) -> PlacementGroupID | None:
        task = self._task()
        group = None if task is None else task.placement_group
        # The id travels as plain bytes in task specs: typed again here.
        return None if group is None else PlacementGroupID(bytes(group[0]))

    def get_placement_group_id(self) -> str | None:
        """Hex id of the placement group the current task or actor was scheduled into
        (also when it was captured from its parent); None outside any group."""
        group = self._placement_group()
        return None if group is None else group.hex()

    @property
    def current_placement_group_id(self) -> PlacementGroupID:
        """Deprecated: ``get_placement_group_id()``. A nil id outside any group."""
        _deprecated("current_placement_group_id", "get_placement_group_id()")
        return self._placement_group() or PlacementGroupID.nil()

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
        # Inside a placement group the task holds the group's resources: report them under
        # the names the task asked for, as Ray does.
        return outside_group(task.resources)

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

    def get_resource_ids(self) -> dict[str, list[str]]:
        """Deprecated: ``get_accelerator_ids()``."""
        _deprecated("get_resource_ids()", "get_accelerator_ids()")
        return self.get_accelerator_ids()

    @property
    def was_current_actor_reconstructed(self) -> bool:
        """Whether the current actor has been restarted since it was first created."""
        actor_id = self._worker.actor_id
        if self._worker.is_driver or actor_id is None:
            raise AssertionError("was_current_actor_reconstructed is only available inside an actor")
        from manta._private.rpc import messages as m

        info = self._worker.call_gcs(m.GetActorInfo(actor_id))
        return info is not None and info.num_restarts > 0

    # Ray's deprecated id properties: typed ids rather than hex strings.
    @property
    def job_id(self) -> JobID:
        """Deprecated: ``get_job_id()``."""
        _deprecated("job_id", "get_job_id()")
        return self._worker.job_id

    @property
    def node_id(self) -> NodeID:
        """Deprecated: ``get_node_id()``."""
        _deprecated("node_id", "get_node_id()")
        return self._worker.node_id

    @property
    def task_id(self) -> TaskID | None:
        """Deprecated: ``get_task_id()``. Raises AssertionError in the driver, as in Ray."""
        _deprecated("task_id", "get_task_id()")
        self._require_worker("task_id")
        task = self._task()
        return None if task is None else task.task_id

    @property
    def actor_id(self) -> ActorID | None:
        """Deprecated: ``get_actor_id()``. Raises AssertionError in the driver, as in Ray."""
        _deprecated("actor_id", "get_actor_id()")
        self._require_worker("actor_id")
        return self._worker.actor_id

    def _require_worker(self, what: str) -> None:
        if self._worker.is_driver:
            raise AssertionError(
                f"RuntimeContext.{what} is only available in a task or actor, not in the driver"
            )

    def get(self) -> dict[str, Any]:
        """Deprecated: the ``get_*_id()`` methods. The job's and node's ids and the
        namespace, and in a task or actor the task's and actor's ids (typed ids)."""
        _deprecated("get()", "the get_*_id() methods")
        result: dict[str, Any] = {
            "job_id": self._worker.job_id,
            "node_id": self._worker.node_id,
            "namespace": self.namespace,
        }
        task = self._task()
        if task is not None:
            result["task_id"] = task.task_id
            if self._worker.actor_id is not None:
                result["actor_id"] = self._worker.actor_id
        return result


def get_runtime_context() -> RuntimeContext:
    return RuntimeContext(ensure_initialized())


def get_gpu_ids() -> list[int]:
    """Indices of the GPUs assigned to the current task (ints, as in Ray)."""
    ids = get_runtime_context().get_accelerator_ids().get("GPU", [])
    return [int(i) if i.isdigit() else i for i in ids]  # type: ignore[misc]
