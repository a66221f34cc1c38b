"""``ray._private.worker``: ``global_worker`` and ``_global_node``, Ray's process-wide
handles on the connected worker and its node, as read-only views of Manta's core worker;
Ray's worker modes; and the core API functions Ray defines in this module.

The views read the current state on every access, so they are right after ``init``,
``shutdown`` and a new ``init``. ``global_worker.core_worker`` (Ray's Cython core worker)
answers the two questions Ray's tests ask it: the reference counts of this process, and
whether an object still exists here.
"""

from __future__ import annotations

import os
import sys
import types
from typing import Any

# Ray defines its core API here: ``from ray._private.worker import get`` is ``manta.get``.
from manta import (
    cancel,
    get,
    get_actor,
    get_gpu_ids,
    init,
    is_initialized,
    kill,
    put,
    remote,
    shutdown,
    wait,
)
from manta._private.api.context import InitContext, current_worker
from manta._private.common.ids import ActorID, JobID, NodeID, TaskID
from manta._private.core_worker import object_manager as objects_module
from manta.exceptions import RaySystemError

__all__ = [
    "RESTORE_WORKER_MODE",
    "SCRIPT_MODE",
    "SPILL_WORKER_MODE",
    "WORKER_MODE",
    "RayContext",
    "Worker",
    "cancel",
    "get",
    "get_actor",
    "get_gpu_ids",
    "global_worker",
    "init",
    "is_initialized",
    "kill",
    "put",
    "remote",
    "shutdown",
    "wait",
]

# Ray's values; Manta has no spill or restore workers, so nothing reports the last two.
SCRIPT_MODE = 0
WORKER_MODE = 1
SPILL_WORKER_MODE = 2
RESTORE_WORKER_MODE = 3

RayContext = InitContext


class Node:
    """What Ray's tests read from ``ray._private.worker._global_node`` (Ray's ``Node``):
    addresses, ids and the session's directories, for the node this process is on."""

    def __init__(self, worker: Any) -> None:
        session = worker.session
        self.session_dir: str = session.session_dir
        self.node_id: str = NodeID(session.node_id).hex()
        self.unique_id: str = self.node_id
        self.node_ip_address: str = session.host
        self.raylet_ip_address: str = session.host
        self.gcs_address: str = session.gcs_address
        self.address: str = session.gcs_address
        self.address_info: dict[str, Any] = {
            "node_ip_address": session.host,
            "raylet_ip_address": session.host,
            "address": session.gcs_address,
            "gcs_address": session.gcs_address,
            "session_dir": session.session_dir,
            "node_id": self.node_id,
            "object_store_address": session.arena_path,
            "webui_url": "",
        }
        self._temp_dir: str = worker.config.tmpdir

    def get_session_dir_path(self) -> str:
        return self.session_dir

    def get_logs_dir_path(self) -> str:
        return os.path.join(self.session_dir, "logs")

    def get_temp_dir_path(self) -> str:
        return self._temp_dir

    @property
    def logs_dir(self) -> str:
        return self.get_logs_dir_path()

    def __repr__(self) -> str:
        return f"Node(node_id={self.node_id!r}, session_dir={self.session_dir!r})"


class Worker:
    """Ray's ``global_worker``, as a view of this process's Manta core worker."""

    @property
    def connected(self) -> bool:
        return current_worker() is not None

    @property
    def mode(self) -> int | None:
        """``SCRIPT_MODE`` in a driver, ``WORKER_MODE`` in a worker, None when not connected."""
        worker = current_worker()
        if worker is None:
            return None
        return SCRIPT_MODE if worker.is_driver else WORKER_MODE

    def check_connected(self) -> None:
        if current_worker() is None:
            raise RaySystemError("Ray has not been started yet. You can start Ray with 'ray.init()'.")

    @property
    def node(self) -> Node | None:
        worker = current_worker()
        return None if worker is None else Node(worker)

    @property
    def current_job_id(self) -> JobID:
        worker = current_worker()
        return JobID.nil() if worker is None else worker.job_id

    @property
    def current_node_id(self) -> NodeID:
        return self._connected().node_id

    @property
    def current_task_id(self) -> TaskID:
        return self._connected().context.task_id

    @property
    def actor_id(self) -> ActorID:
        actor_id = self._connected().actor_id
        return ActorID.nil() if actor_id is None else actor_id

    @property
    def worker_id(self) -> bytes:
        """The raw bytes of this worker's id, as in Ray."""
        return self._connected().worker_id.binary()

    @property
    def namespace(self) -> str:
        return self._connected().namespace

    @property
    def node_ip_address(self) -> str:
        return self._connected().session.host

    @property
    def core_worker(self) -> CoreWorkerView:
        return CoreWorkerView(self._connected())

    def _connected(self) -> Any:
        worker = current_worker()
        if worker is None:
            raise RaySystemError("Ray has not been started yet. You can start Ray with 'ray.init()'.")
        return worker

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"ray._private.worker.global_worker.{name} has no counterpart in Manta "
            "(manta.compat provides mode, connected, node, core_worker, current_job_id, "
            "current_node_id, current_task_id, actor_id, worker_id, namespace and node_ip_address)"
        )


class CoreWorkerView:
    """The parts of Ray's core worker that Ray's tests read, from Manta's."""

    def __init__(self, worker: Any) -> None:
        self._worker = worker

    def get_all_reference_counts(self) -> dict[bytes, dict[str, int]]:
        """Every object this process counts references to: ``{hex id (bytes): {"local":
        refs in this process (out-of-band pickles count, as in Ray), "submitted": pending
        tasks that take it}}``, for objects with either."""
        self._worker.objects.collect_references()
        counts = {}
        for (
            object_id,
            _owned,
            local,
            submitted,
            _contained,
            _borrowers,
            pinned,
        ) in self._worker.references.snapshot():
            if local + pinned or submitted:
                counts[object_id.hex().encode("ascii")] = {"local": local + pinned, "submitted": submitted}
        return counts

    def object_exists(self, ref: Any) -> bool:
        """Whether the object's value is here: in this process's memory, or in this node's
        store in memory (as in Ray, an object spilled to disk does not count)."""
        from manta._private.rpc.messages import GetMemoryReport

        worker = self._worker
        worker.objects.collect_references()
        known = worker.memory_store.get(ref.id)
        if known is None:
            return False
        if known.node_id is None:
            return True
        report = worker.call_node(GetMemoryReport())
        return any(o.object_id == ref.id and o.state == "in memory" for o in report.objects)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"ray._private.worker.global_worker.core_worker.{name} has no counterpart in Manta "
            "(manta.compat provides get_all_reference_counts and object_exists)"
        )


global_worker = Worker()


def __getattr__(name: str) -> Any:
    # Ray's module global, set by init and cleared by shutdown; here computed per read.
    if name == "_global_node":
        return global_worker.node
    if name == "_unhandled_error_handler":
        return objects_module.unhandled_error_handler
    raise AttributeError(f"Manta does not provide ray._private.worker.{name}")


class _Module(types.ModuleType):
    """Assigning Ray's ``_unhandled_error_handler`` here sets Manta's hook."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_unhandled_error_handler":
            objects_module.unhandled_error_handler = value
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Module
