"""Between core workers (drivers and workers): tasks, results, objects, borrowing,
actor creation (tags 70-99 and 120-149).
"""

from __future__ import annotations

from manta._private.common.ids import LeaseID, NodeID, ObjectID, TaskID, WorkerID
from manta._private.rpc.codec import message
from manta._private.rpc.messages.shared import ActorSpec, Address, TaskSpec


@message(72)
class PushTask:
    spec: TaskSpec
    lease_id: LeaseID
    instance_ids: dict[str, list[str]]


@message(73)
class ReturnObject:
    object_id: ObjectID
    inline: bytes | None
    size: int
    node_id: NodeID | None
    # Refs inside the value. The worker registered the task's owner as a borrower of each
    # with its owner before replying, so they stay alive until the owner takes them over.
    contained: list[NestedRef] | None = None


@message(74)
class TaskResult:
    returns: list[ReturnObject]
    # The task raised: every return holds the serialized error.
    is_error: bool
    exec_s: float
    # The worker reached max_calls and exits after this reply: push nothing more to it.
    worker_exiting: bool = False
    # The worker is exiting and did not run this task: run it elsewhere (not a retry).
    rejected: bool = False
    # The task did not run: the store had lost these arguments. Its owner has them made
    # again and runs the task once they are back (not a retry).
    lost_args: list[ObjectID] | None = None


@message(75)
class CancelTask:
    task_id: TaskID
    force: bool
    recursive: bool


@message(76)
class GetObject:
    object_id: ObjectID
    # Reply only once the object is ready (a long poll); else reply with the status now.
    wait: bool


@message(77)
class ObjectStatus:
    object_id: ObjectID
    ready: bool
    inline: bytes | None
    node_id: NodeID | None
    size: int
    # Set when the owner no longer has the object (freed or unknown).
    missing: str


@message(78)
class ExitWorker:
    reason: str
    # Only if the worker owns nothing others still use (idle reaping); the reply says
    # whether it exits. Otherwise it must exit.
    if_unused: bool = False


@message(79)
class CreateActor:
    spec: ActorSpec
    lease_id: LeaseID
    instance_ids: dict[str, list[str]]


@message(80)
class ActorCreated:
    ok: bool
    # A serialized RayTaskError when the constructor raised.
    error: bytes | None


@message(81)
class GetReferences:
    pass


@message(83)
class NestedRef:
    """A ref found inside a value: the object and its owner."""

    object_id: ObjectID
    owner: Address


@message(84)
class AddBorrower:
    """To an owner: ``borrower`` holds refs to these objects; keep them until it says
    otherwise (RemoveBorrower) or dies. Replies the ids the owner no longer has."""

    object_ids: list[ObjectID]
    borrower: Address


@message(85)
class RemoveBorrower:
    object_ids: list[ObjectID]
    borrower: WorkerID
    # How many of the borrower's registrations each id retires (its own, plus those made
    # for it by workers that returned the ref).
    registrations: list[int]


@message(93)
class GeneratorItem:
    """To an owner: item ``index`` (from 0) of a generator task's output. The reply (True)
    comes once the worker may produce the next item (at once, unless backpressure holds it)."""

    task_id: TaskID
    index: int
    item: ReturnObject


@message(120)
class CancelOwnedTask:
    """To a task's owner, from another process holding a ref to its result: cancel it."""

    task_id: TaskID
    force: bool
    recursive: bool


@message(88)
class ObjectLost:
    """To an owner: the store no longer has this object, though it is still in use. The
    owner makes it again from lineage, or records why it cannot."""

    object_id: ObjectID


@message(87)
class ReleaseOutOfBand:
    """To the process that pickled refs out of band: a pickle of each was loaded."""

    object_ids: list[ObjectID]


@message(86)
class WorkerGone:
    """Published on ``worker_died``: a worker or driver ended (its borrows end with it)."""

    worker_id: WorkerID
    node_id: NodeID
