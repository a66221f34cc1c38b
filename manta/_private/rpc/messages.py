"""Every message that crosses a process boundary, in one place.

Tags are wire numbers: never reuse or renumber one; add new messages at the end of
their group. Groups: 1-9 handshake and shared shapes, 10-39 gcs, 40-69 node daemon,
70-99 and 120-149 core worker, 100-119 node-internal (fork server).
"""

from __future__ import annotations

from typing import Any

from manta._private.common.ids import (
    ActorID,
    JobID,
    LeaseID,
    NodeID,
    ObjectID,
    PlacementGroupID,
    TaskID,
    WorkerID,
)
from manta._private.rpc.codec import message

# -- handshake and shared shapes --------------------------------------------------------


@message(1)
class Hello:
    protocol: int
    version: str
    token: bytes
    kind: str  # what the client says it is: "driver", "worker", "node", "cli", ...
    ident: bytes
    info: dict[str, Any]


@message(2)
class Welcome:
    protocol: int
    version: str
    role: str  # what the server grants the client (decided from its token)
    ident: bytes
    info: dict[str, Any]


@message(3)
class Address:
    """Where a core worker (driver or worker) listens."""

    node_id: NodeID
    worker_id: WorkerID
    host: str
    port: int
    unix: str
    pid: int

    def for_peer_on(self, node_id: NodeID) -> str:
        """The address string a peer on ``node_id`` should dial."""
        if self.unix and node_id == self.node_id:
            return "unix:" + self.unix
        return f"{self.host}:{self.port}"


@message(4)
class NodeInfo:
    node_id: NodeID
    host: str
    port: int
    unix: str
    hostname: str
    # The node's object store arena (a file in /dev/shm, or on disk).
    arena_path: str
    session_dir: str
    resources: dict[str, float]
    labels: dict[str, str]
    is_head: bool
    pid: int


# -- gcs ----------------------------------------------------------------------------------


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


@message(23)
class Published:
    channel: str
    key: bytes
    payload: Any


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


@message(27)
class ActorSpec:
    """Everything needed to create (and re-create) an actor."""

    actor_id: ActorID
    job_id: JobID
    class_name: str
    module: str
    function_id: bytes
    # Constructor arguments, as in TaskSpec.
    args: bytes
    ref_args: list[ArgValue]
    # Held while the actor lives / needed free to place it.
    resources: dict[str, float]
    placement: dict[str, float]
    owner: Address
    name: str
    namespace: str
    detached: bool
    max_restarts: int
    max_task_retries: int
    max_concurrency: int
    concurrency_groups: dict[str, int]
    is_async: bool
    runtime_env: dict[str, Any] | None
    strategy: Any
    # method name -> [num_returns, concurrency_group]
    methods: dict[str, list[Any]]
    max_pending_calls: int
    # The placement group it runs in: [group id, bundle index, capture child tasks].
    placement_group: list[Any] | None = None


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


# -- node daemon ------------------------------------------------------------------------


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


# -- core worker ------------------------------------------------------------------------


@message(70)
class ArgValue:
    """A resolved top-level ObjectRef argument: inline bytes, or where the value lies."""

    object_id: ObjectID
    inline: bytes | None
    node_id: NodeID | None
    size: int


@message(71)
class TaskSpec:
    task_id: TaskID
    job_id: JobID
    parent_task_id: TaskID
    name: str
    function_id: bytes
    function_name: str
    # The pickled (args, kwargs) with top-level refs replaced by slots (large arguments
    # were put into the store first, so this is always small).
    args: bytes
    # Values for the slots, in order.
    ref_args: list[ArgValue]
    num_returns: int
    owner: Address
    attempt: int
    resources: dict[str, float]
    runtime_env: dict[str, Any] | None
    depth: int
    # The worker exits after running this function this many times (0: never).
    max_calls: int = 0
    # Set for actor method calls: which actor, which method, which concurrency group.
    actor_id: ActorID | None = None
    method: str = ""
    concurrency_group: str = ""
    # The placement group it runs in: [group id, bundle index, capture child tasks].
    placement_group: list[Any] | None = None
    # A generator task: its items are sent to the owner one by one as GeneratorItem
    # (GENERATOR_STREAMING or GENERATOR_DYNAMIC; 0 for a plain task). With backpressure > 0
    # the worker pauses while that many items wait unconsumed.
    generator: int = 0
    backpressure: int = 0


GENERATOR_STREAMING = 1
GENERATOR_DYNAMIC = 2


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


@message(82)
class ReferenceInfo:
    """One object a process knows, and why it keeps it alive."""

    object_id: ObjectID
    owned: bool
    # Live ObjectRefs in the process; pending tasks (or actors) that take it as an argument.
    local_refs: int
    submitted: int
    # Values held here with a ref to it inside; processes that borrow it (owned objects).
    contained: int
    borrowers: int
    # Refs to it pickled outside Manta and not loaded yet, or captured by remote functions.
    pinned: int
    size: int
    # "inline" (in the owner's memory), "store" (a node's arena), or "pending" (not made yet)
    where: str
    call_site: str


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


# -- fork server (node daemon <-> its template process) ----------------------------------


@message(100)
class ForkWorker:
    worker_id: WorkerID
    env: dict[str, str]
    stdout_path: str
    stderr_path: str


@message(101)
class Forked:
    worker_id: WorkerID
    pid: int


@message(102)
class ChildExited:
    pid: int
    exit_code: int | None
    signal: int | None


# -- placement groups ----------------------------------------------------------------------


@message(95)
class PlacementGroupSpec:
    pg_id: PlacementGroupID
    name: str
    namespace: str
    job_id: JobID
    bundles: list[dict[str, float]]
    strategy: str
    detached: bool
    # Per bundle: labels the node must have (``bundle_label_selector``), or None.
    label_selectors: list[dict[str, Any]] | None = None


@message(96)
class PlacementGroupInfo:
    pg_id: PlacementGroupID
    name: str
    namespace: str
    state: str  # PENDING, CREATED, RESCHEDULING, REMOVED
    bundles: list[dict[str, float]]
    strategy: str
    # The node of each bundle (hex), "" while unplaced.
    nodes: list[str]
    detached: bool
    # Why it waits, while it waits.
    message: str
    # It waits because the cluster could never hold it (not only because it is busy).
    infeasible: bool = False


@message(97)
class CreatePlacementGroup:
    spec: PlacementGroupSpec


@message(98)
class RemovePlacementGroup:
    pg_id: PlacementGroupID


@message(99)
class GetPlacementGroup:
    pg_id: PlacementGroupID | None
    name: str
    namespace: str


@message(103)
class ListPlacementGroups:
    pass


@message(104)
class WaitPlacementGroup:
    pg_id: PlacementGroupID
    timeout_s: float


@message(105)
class PrepareBundles:
    """Phase one: reserve these bundles' resources on this node, all or none (True)."""

    pg_id: PlacementGroupID
    # [index, resources] per bundle.
    bundles: list[list[Any]]
    # Which reservation attempt of the group this is (a commit or rollback names it).
    attempt: int = 0


@message(106)
class CommitBundles:
    """Phase two: the reserved bundles become the group's resources on this node."""

    pg_id: PlacementGroupID
    indices: list[int]
    attempt: int = 0


@message(107)
class ReleaseBundles:
    """Give back bundles (prepared or committed; None: all of the group's); work using
    them is stopped."""

    pg_id: PlacementGroupID
    indices: list[int] | None
    # Only bundles that attempt reserved (a rollback); None: whatever is held.
    attempt: int | None = None
