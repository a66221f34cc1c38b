"""Requests to the gcs and what it answers: membership, key-value data, jobs,
subscriptions, actors (tags 10-39).
"""

from __future__ import annotations

from typing import Any

from manta._private.common.ids import ActorID, JobID, NodeID, WorkerID
from manta._private.rpc.codec import message
from manta._private.rpc.messages.shared import ActorSpec, Address, ArgValue, NodeInfo


@message(10)
class RegisterNode:
    info: NodeInfo


@message(11)
class Heartbeat:
    node_id: NodeID
    available: dict[str, float]
    # Resource shapes waiting for a lease on this node, and which of them fit no node.
    pending: list[dict[str, float]]
    infeasible: list[dict[str, float]]
    # The node's totals when they differ from its registration (placement group bundles).
    total: dict[str, float] | None = None
    # The label selector of each shape of ``pending`` and ``infeasible``, in their order.
    pending_labels: list[dict[str, Any]] | None = None
    infeasible_labels: list[dict[str, Any]] | None = None


@message(12)
class GetNodes:
    pass


@message(13)
class NodeState:
    info: NodeInfo
    alive: bool
    available: dict[str, float]
    death_reason: str
    # Resource shapes waiting for a lease there, and those no node can fit.
    pending: list[dict[str, float]]
    infeasible: list[dict[str, float]]
    # Totals now (with placement group bundles), when not ``info.resources``.
    total: dict[str, float] | None = None
    # The label selector of each shape of ``pending`` and ``infeasible`` (the autoscaler's).
    pending_labels: list[dict[str, Any]] | None = None
    infeasible_labels: list[dict[str, Any]] | None = None


@message(14)
class KvPut:
    namespace: str
    key: bytes
    value: bytes
    overwrite: bool


@message(15)
class KvGet:
    namespace: str
    key: bytes


@message(16)
class KvDel:
    namespace: str
    key: bytes


@message(17)
class KvKeys:
    namespace: str
    prefix: bytes


@message(18)
class RegisterJob:
    driver: Address
    namespace: str
    # sys_path, cwd, runtime_env and entrypoint of the driver.
    config: dict[str, Any]


@message(94)
class ReattachDriver:
    """A driver reconnecting to a restarted gcs: this connection is ``job_id``'s driver
    again (its job ends when the connection does)."""

    job_id: JobID


@message(19)
class GetJob:
    job_id: JobID


@message(20)
class JobInfo:
    job_id: JobID
    driver: Address
    namespace: str
    config: dict[str, Any]
    alive: bool
    start_time: float
    end_time: float


@message(21)
class JobFinished:
    job_id: JobID


@message(22)
class Subscribe:
    channel: str
    key: bytes


@message(24)
class LogBatch:
    job_id: JobID
    node_id: NodeID
    host: str
    pid: int
    task_name: str
    is_err: bool
    lines: list[str]


@message(25)
class UnregisterNode:
    node_id: NodeID
    reason: str


@message(26)
class GetAllJobs:
    pass


@message(36)
class Ping:
    """Answered once everything sent before it on the connection has been handled."""


@message(28)
class RegisterActor:
    spec: ActorSpec
    get_if_exists: bool
    # Its constructor's ref arguments are not ready yet: record it (so its name is taken,
    # and it dies with its owner) but place it only at ActorArgsReady.
    args_pending: bool = False


@message(37)
class ActorArgsReady:
    """The constructor arguments of an actor registered with ``args_pending`` are ready."""

    actor_id: ActorID
    ref_args: list[ArgValue]


@message(29)
class ActorInfo:
    """An actor's state as the gcs publishes it (channel "actor", key: its id)."""

    actor_id: ActorID
    state: str  # PENDING, ALIVE, RESTARTING, DEAD
    address: Address | None
    num_restarts: int
    # Why it is dead (or why it restarted), for error messages.
    death_cause: str
    # A serialized RayTaskError when the constructor raised.
    creation_error: bytes | None
    class_name: str
    name: str
    namespace: str
    detached: bool
    methods: dict[str, list[Any]]
    max_task_retries: int
    max_pending_calls: int
    is_async: bool
    owner: Address
    # Where a dead actor last ran (None while it is not dead, or if it never ran).
    last_address: Address | None = None


@message(30)
class GetActorInfo:
    actor_id: ActorID


@message(31)
class GetNamedActor:
    name: str
    namespace: str


@message(32)
class ListNamedActors:
    namespace: str
    all_namespaces: bool


@message(39)
class ErrorPush:
    """An error the system tells a job's driver about (a worker that died under a task, a
    very large function, ...), published on the gcs's ``errors`` channel for the job."""

    job_id: JobID
    type: str  # Ray's names: "worker_died", "pickling_large_object", ...
    message: str
    timestamp: float


@message(38)
class ListActors:
    """Every actor the gcs knows, dead ones too (the state API): a list of ActorInfo."""


@message(109)
class GetActorDemand:
    """What each actor that no node can hold now needs, as [resources, label selector]
    pairs: the autoscaler's demand (actors waiting at a node are in its heartbeat)."""


@message(33)
class KillActor:
    actor_id: ActorID
    no_restart: bool
    reason: str


@message(34)
class ActorExiting:
    """Sent by an actor's worker just before it exits on purpose (no restart)."""

    actor_id: ActorID
    reason: str


@message(35)
class WorkerDied:
    """Sent by a node daemon when one of its workers exits, for the actors it owned."""

    worker_id: WorkerID
    node_id: NodeID
    reason: str
