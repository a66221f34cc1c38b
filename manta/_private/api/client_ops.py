"""What a remote driver asks its session on the head to do: one record per operation,
pickled into a ``ClientCall`` (they carry user values: arguments, refs, functions). The
session runs each on its core worker as a local driver's API call would (client/calls.py).

``waits``: the operation may block (a ``get``), so the session runs it beside the others
rather than holding up the calls after it. ``submits``: a submission the client does not
wait for (it chose the task id and made the refs of the returns itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from manta._private.common.ids import ActorID, JobID, TaskID


@dataclass(frozen=True, slots=True)
class Operation:
    waits: ClassVar[bool] = False
    submits: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class SubmitTask(Operation):
    submits: ClassVar[bool] = True
    task_id: TaskID
    options: dict[str, Any]  # CoreWorker.submit_task's keyword arguments


@dataclass(frozen=True, slots=True)
class CallActor(Operation):
    submits: ClassVar[bool] = True
    task_id: TaskID
    actor_id: ActorID
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    options: dict[str, Any]  # ActorClient.call's keyword arguments


@dataclass(frozen=True, slots=True)
class CreateActor(Operation):
    spec: Any  # an ActorSpec
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
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
    value: Any


@dataclass(frozen=True, slots=True)
class Get(Operation):
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
