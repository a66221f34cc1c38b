"""Requests to a node daemon: worker leases, the object store, transfers, worker
exits and statistics (tags 40-69).
"""

from __future__ import annotations

from typing import Any

from manta._private.common.ids import JobID, LeaseID, NodeID, ObjectID, WorkerID
from manta._private.rpc.codec import message
from manta._private.rpc.messages.shared import Address, ReferenceInfo


@message(40)
class RegisterWorker:
    worker_id: WorkerID
    address: Address


@message(41)
class RequestLease:
    # Chosen by the requester; names the request in CancelLeaseRequest and LeaseInfeasible.
    nonce: int
    job_id: JobID
    resources: dict[str, float]
    # Workers are dedicated to one runtime environment; this keys the pool.
    runtime_env_key: str
    strategy: Any
    # What must be free to place the lease, when more than it holds (an actor without
    # num_cpus needs a CPU to be placed but holds none while it lives, as in Ray).
    placement: dict[str, float] | None = None
    # Sent here by another node's spillback: queue it here rather than spill it again
    # (unless this node can never fit it).
    spilled: bool = False
    # Sent here because this node holds most of the task's argument bytes: granted here
    # when it fits now, whatever the spread policy would prefer (Ray's locality).
    locality: bool = False


@message(42)
class LeaseGrant:
    lease_id: LeaseID
    worker_id: WorkerID
    address: Address
    resources: dict[str, float]
    instance_ids: dict[str, list[str]]


@message(43)
class LeaseCancelled:
    reason: str


@message(89)
class LeaseSpillback:
    """Reply to RequestLease: ask the node daemon at ``address`` instead."""

    node_id: NodeID
    address: str


@message(90)
class LeaseRefused:
    """Reply to RequestLease: it can never be placed (e.g. hard affinity to a dead node)."""

    reason: str
    # The error the waiting tasks fail with (a name from manta.exceptions).
    error: str = "TaskUnschedulableError"


@message(44)
class CancelLeaseRequest:
    nonce: int


@message(45)
class LeaseInfeasible:
    nonce: int
    resources: dict[str, float]
    message: str


@message(46)
class ReturnLease:
    lease_id: LeaseID
    # The worker misbehaved or the owner saw it fail: do not reuse it.
    kill_worker: bool


@message(47)
class WorkerBlocked:
    pass


@message(48)
class WorkerUnblocked:
    pass


@message(49)
class CreateObject:
    """A writer asks for ``size`` bytes of the arena for a new object of ``owner``."""

    object_id: ObjectID
    size: int
    owner: WorkerID


@message(50)
class FreeObjects:
    object_ids: list[ObjectID]
    # The node whose store holds them, when not the receiver: it forwards them there.
    node_id: NodeID | None = None


@message(51)
class KillWorker:
    worker_id: WorkerID
    reason: str


@message(52)
class GetWorkerExit:
    worker_id: WorkerID


@message(53)
class WorkerExit:
    worker_id: WorkerID
    pid: int
    exit_code: int | None
    signal: int | None
    reason: str
    # The node's memory monitor killed it: ``reason`` is the whole message for the owner,
    # whose task then fails with OutOfMemoryError (once its retries are spent).
    out_of_memory: bool = False


@message(54)
class GetNodeStats:
    pass


@message(57)
class ObjectCreated:
    offset: int
    size: int
    # The object is already stored and sealed (a task made again returns the same ids):
    # nothing to write.
    exists: bool = False


@message(58)
class SealObject:
    object_id: ObjectID


@message(59)
class PinObject:
    """A reader asks where an object is, and that it stay there until unpinned. When it
    is not here, ``source`` names a node that has it, to copy it from."""

    object_id: ObjectID
    source: NodeID | None = None


@message(91)
class PinForTransfer:
    """Another node's daemon will read this object: keep it in memory until it unpins."""

    object_id: ObjectID


@message(92)
class TransferSource:
    """Where to stream a pinned object from: connect to ``port`` on the source node's host
    and send ``ticket`` (single use, valid for a short while); the bytes follow."""

    size: int
    owner: WorkerID
    port: int
    ticket: bytes


@message(60)
class ObjectLocation:
    object_id: ObjectID
    offset: int
    size: int


@message(61)
class UnpinObjects:
    object_ids: list[ObjectID]


@message(62)
class AbortObject:
    """The writer failed midway: free the space, keep nothing of it."""

    object_id: ObjectID


@message(63)
class GetMemoryReport:
    """What holds memory on a node: its store, and every connected process's references."""


@message(64)
class StoreObject:
    object_id: ObjectID
    size: int
    owner: WorkerID
    # "in memory", "being written", "spilled" or "spilling"
    state: str
    pins: int
    spill_path: str


@message(65)
class ProcessReferences:
    worker_id: WorkerID
    pid: int
    is_driver: bool
    references: list[ReferenceInfo]


@message(66)
class MemoryReport:
    node_id: NodeID
    host: str
    capacity: int
    used_bytes: int
    spilled_bytes: int
    objects: list[StoreObject]
    processes: list[ProcessReferences]


@message(56)
class NodeStats:
    """What a node daemon is doing, for tools, metrics and tests."""

    node_id: NodeID
    # worker id hex -> [state, pid]
    workers: dict[str, list[Any]]
    pending_leases: int
    objects: int
    object_bytes: int
    spilled_bytes: int
    available: dict[str, float]


@message(55)
class FlushLogs:
    """Publish all worker output written so far; answered once the gcs has relayed it."""
