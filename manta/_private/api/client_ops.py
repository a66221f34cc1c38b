"""What a remote driver asks its session on the head to do: one record per operation,
pickled into a ``ClientCall``. The session runs each on its core worker as a local
driver's API call would (client/calls.py). User values (arguments, ``put``'s and ``get``'s
values, functions) cross it serialized, and the session passes them on unread: a class
that only the laptop and the workers' environment have is never loaded on the head.

``waits``: the operation may block (a ``get``), so the session runs it beside the others
rather than holding up the calls after it. ``submits``: a submission the client does not
wait for (it chose the task id and made the refs of the returns itself).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any, ClassVar

from manta._private import serialization
from manta._private.common.ids import ActorID, JobID, TaskID
from manta._private.core_worker.args import Packed
from manta._private.core_worker.object_manager import value_or_raise


@dataclass(frozen=True, slots=True)
class Value:
    """A value as Manta serializes it (serialization.py), unread by the session. Its bytes
    go out of band (``PickleBuffer``): not copied into the call's pickle."""

    flags: int
    data: Any
    buffers: list[Any]
    refs: list[Any]  # the refs inside it (of a put: the session counts them as contained)

    @classmethod
    def of(cls, obj: serialization.SerializedObject) -> Value:
        buffers = [pickle.PickleBuffer(b) for b in obj.buffers]
        return cls(obj.flags, pickle.PickleBuffer(obj.data), buffers, list(obj.contained_refs))

    def serialized(self) -> serialization.SerializedObject:
        buffers = [memoryview(b) for b in self.buffers]
        return serialization.SerializedObject(bytes(self.data), buffers, self.flags, self.refs)

    def load(self) -> Any:
        """The value, as a get returns it (an error is raised)."""
        value = serialization.deserialize(self.data, self.buffers)
        return value_or_raise(value, bool(self.flags & serialization.FLAG_ERROR))


@dataclass(frozen=True, slots=True)
class Operation:
    waits: ClassVar[bool] = False
    submits: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class SubmitTask(Operation):
    submits: ClassVar[bool] = True
    task_id: TaskID
    options: dict[str, Any]  # CoreWorker.submit_task's keyword arguments (``args`` Packed)


@dataclass(frozen=True, slots=True)
class CallActor(Operation):
    submits: ClassVar[bool] = True
    task_id: TaskID
    actor_id: ActorID
    method: str
    args: Packed
    options: dict[str, Any]  # ActorClient.call's keyword arguments


@dataclass(frozen=True, slots=True)
class CreateActor(Operation):
    spec: Any  # an ActorSpec
    args: Packed
    get_if_exists: bool


@dataclass(frozen=True, slots=True)
class LookupActor(Operation):
    name: str
    namespace: str


@dataclass(frozen=True, slots=True)
class KillActor(Operation):
    actor_id: ActorID
    no_restart: bool


@dataclass(frozen=True, slots=True)
class ListNamedActors(Operation):
    namespace: str
    all_namespaces: bool


@dataclass(frozen=True, slots=True)
class ExportFunction(Operation):
    job_id: JobID
    function_id: bytes
    pickled: bytes


@dataclass(frozen=True, slots=True)
class Put(Operation):
    value: Value


@dataclass(frozen=True, slots=True)
class Get(Operation):
    """Answered with the objects' ``Value``s; when one is an error, with only that one."""

    waits: ClassVar[bool] = True
    refs: list[Any]
    timeout: float | None


@dataclass(frozen=True, slots=True)
class Wait(Operation):
    waits: ClassVar[bool] = True
    refs: list[Any]
    num_returns: int
    timeout: float | None
    fetch_local: bool
    stream_ids: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Cancel(Operation):
    ref: Any
    force: bool
    recursive: bool


@dataclass(frozen=True, slots=True)
class AskGcs(Operation):
    """A gcs request of the API's (placement groups, the KV store, listings), checked
    against what the client's role may ask."""

    msg: Any


@dataclass(frozen=True, slots=True)
class NextItem(Operation):
    """The next item of a streaming generator the client called, within ``timeout``."""

    waits: ClassVar[bool] = True
    task_id: TaskID
    timeout: float | None


@dataclass(frozen=True, slots=True)
class ItemReady(Operation):
    task_id: TaskID


@dataclass(frozen=True, slots=True)
class StreamFinished(Operation):
    task_id: TaskID


@dataclass(frozen=True, slots=True)
class NextItemId(Operation):
    task_id: TaskID


@dataclass(frozen=True, slots=True)
class GatherState(Operation):
    """The state API's gathering (``manta.util.state``), done by the session."""

    waits: ClassVar[bool] = True
    work: Any
    timeout: float


@dataclass(frozen=True, slots=True)
class MemoryReport(Operation):
    waits: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class Nothing(Operation):
    """Carries reference holds and releases when the client has no other call to make."""


@dataclass(frozen=True, slots=True)
class EndSession(Operation):
    """``manta.shutdown()``: the session ends (its job, its actors, its objects with it)."""
