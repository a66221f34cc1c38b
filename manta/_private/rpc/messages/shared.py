"""Shapes more than one service sends: the handshake, addresses, and the specs of
tasks and actors (tags 1-4, and the tags these kept from the group they were first in).
"""

from __future__ import annotations

from typing import Any

from manta._private.common.ids import ActorID, JobID, NodeID, ObjectID, TaskID, WorkerID
from manta._private.rpc.codec import message


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


@message(23)
class Published:
    channel: str
    key: bytes
    payload: Any


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
    # Whether its creation records task events (the actor's enable_task_events).
    task_events: bool = True


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
    # Whether its owner and its worker record its events (enable_task_events).
    task_events: bool = True


GENERATOR_STREAMING = 1
GENERATOR_DYNAMIC = 2


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
