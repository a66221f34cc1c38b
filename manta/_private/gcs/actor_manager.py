"""The life of every actor, as the gcs sees it: a pure state machine.

    PENDING --lease, constructor ok--> ALIVE --worker died, restarts left--> RESTARTING
       |                                 |                                      |
       +--constructor raised--> DEAD <---+--killed / exited / no restarts ------+

Events come in (registered, lease granted, created, worker died, killed, owner died, job
finished); actions go out (lease a worker, create the actor on it, stop a worker, publish
the new state). Every (re)creation attempt has a *generation*; events of an older
generation are stale and ignored, so a slow reply can never revive a dead actor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from manta._private.common.ids import ActorID, JobID, LeaseID, NodeID, WorkerID
from manta._private.common.placement import Chosen, NodeEntry, Placer, hard_labels
from manta._private.common.placement import Unschedulable as PlacementRefused
from manta._private.rpc import codec
from manta._private.rpc.messages import ActorInfo, ActorSpec, Address, ArgValue, LeaseGrant

PENDING, ALIVE, RESTARTING, DEAD = "PENDING", "ALIVE", "RESTARTING", "DEAD"
# The death cause of an actor whose node died (callers render it in Ray's words).
NODE_DIED = "its node has died"


@dataclass(slots=True)
class ActorRecord:
    spec: ActorSpec
    state: str = PENDING
    generation: int = 0
    node_id: NodeID | None = None
    lease_id: LeaseID | None = None
    worker_id: WorkerID | None = None
    address: Address | None = None
    num_restarts: int = 0
    death_cause: str = ""
    creation_error: bytes | None = None
    # Killed with no_restart, or exiting on purpose: the next death is final.
    final: bool = False
    final_cause: str = ""
    # Registered before its constructor's ref arguments were ready: placed once they are.
    waiting_args: bool = False
    # A lease for its current generation is asked for and not answered yet: placing it
    # again would queue a second request (not stored: a restarted gcs asks anew).
    leasing: bool = False


@dataclass(frozen=True, slots=True)
class NodeView:
    node_id: NodeID
    total: dict[str, float]
    available: dict[str, float]
    labels: dict[str, str] = field(default_factory=dict)


# -- actions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeaseWorker:
    actor_id: ActorID
    generation: int
    node_id: NodeID
    spec: ActorSpec


@dataclass(frozen=True, slots=True)
class CreateOnWorker:
    actor_id: ActorID
    generation: int
    grant: LeaseGrant
    spec: ActorSpec


@dataclass(frozen=True, slots=True)
class StopWorker:
    node_id: NodeID
    worker_id: WorkerID
    lease_id: LeaseID
    reason: str


@dataclass(frozen=True, slots=True)
class Publish:
    info: ActorInfo


@dataclass(frozen=True, slots=True)
class Unschedulable:
    """No live node can ever fit the actor: it stays pending; tell its owner once."""

    actor_id: ActorID
    message: str


@dataclass(frozen=True, slots=True)
class Watch:
    """Follow a live actor's worker (after a gcs restart): its end is the actor's loss."""

    actor_id: ActorID
    generation: int
    worker_id: WorkerID
    address: Address


Action = LeaseWorker | CreateOnWorker | StopWorker | Publish | Unschedulable | Watch


class NameTaken(ValueError):
    pass


class QuotaExceeded(ValueError):
    """A job has as many live actors as the cluster allows one job."""


@dataclass
class ActorManager:
    actors: dict[ActorID, ActorRecord] = field(default_factory=dict)
    named: dict[tuple[str, str], ActorID] = field(default_factory=dict)
    _placer: Placer = field(default_factory=Placer)
    # Live actors one job may have at once (0: no limit).
    max_actors_per_job: int = 0
    # Nodes alive before a gcs restart have not all come back: actors are placed once they
    # have (``retry_pending``); a partial view would misplace them, or refuse an affinity
    # to a node that is only not back yet.
    placing_paused: bool = False

    # -- queries ----------------------------------------------------------------------------
    def info(self, actor_id: ActorID) -> ActorInfo | None:
        record = self.actors.get(actor_id)
        return None if record is None else _info(record)

    def all_infos(self) -> list[ActorInfo]:
        return [_info(record) for record in self.actors.values()]

    def waiting_for_room(self) -> list[list[dict[str, Any]]]:
        """[resources, label selector] of each actor that no node can hold now (not in a
        placement group: its group's bundles are that demand)."""
        waiting = []
        for record in self.actors.values():
            spec = record.spec
            if _unplaced(record) and not spec.placement_group:
                waiting.append([dict(spec.placement or spec.resources), hard_labels(spec.strategy)])
        return waiting

    def lookup(self, name: str, namespace: str) -> ActorInfo | None:
        actor_id = self.named.get((namespace, name))
        return None if actor_id is None else self.info(actor_id)

    def list_named(self, namespace: str, all_namespaces: bool) -> list[tuple[str, str]]:
        return sorted(
            (ns, name)
            for (ns, name), actor_id in self.named.items()
            if (all_namespaces or ns == namespace) and self.actors[actor_id].state != DEAD
        )

    # -- events -------------------------------------------------------------------------------
    def register(
        self, spec: ActorSpec, get_if_exists: bool, nodes: list[NodeView], args_pending: bool = False
    ) -> tuple[ActorInfo, list[Action]]:
        known = self.actors.get(spec.actor_id)
        if known is not None and known.spec == spec:
            # Sent again: its owner lost the answer when the gcs restarted.
            return _info(known), []
        if spec.name:
            existing = self.named.get((spec.namespace, spec.name))
            if existing is not None and self.actors[existing].state != DEAD:
                if get_if_exists:
                    return _info(self.actors[existing]), []
                raise NameTaken(
                    f"The name {spec.name} (namespace={spec.namespace}) is already taken. Please use a "
                    f"different name or get the existing actor using manta.get_actor('{spec.name}', "
                    f"namespace='{spec.namespace}')"
                )
        if spec.actor_id in self.actors:
            raise ValueError(f"actor {spec.actor_id.hex()} is already registered")
        self._check_quota(spec)
        record = ActorRecord(spec, waiting_args=args_pending)
        self.actors[spec.actor_id] = record
        if spec.name:
            self.named[(spec.namespace, spec.name)] = spec.actor_id
        placing = [] if args_pending else self._schedule(record, nodes)
        return _info(record), [Publish(_info(record)), *placing]

    def _check_quota(self, spec: ActorSpec) -> None:
        limit = self.max_actors_per_job
        if (
            limit
            and sum(r.spec.job_id == spec.job_id and r.state != DEAD for r in self.actors.values()) >= limit
        ):
            raise QuotaExceeded(
                f"job {spec.job_id.hex()} already has {limit} live actors, the most one job may have on this "
                f"cluster (manta start --max-actors-per-job / MANTA_MAX_ACTORS_PER_JOB): kill some, or ask the "
                "cluster's operator to raise the limit"
            )

    def args_ready(self, actor_id: ActorID, ref_args: list[ArgValue], nodes: list[NodeView]) -> list[Action]:
        """An actor registered before its arguments were ready can be placed now."""
        record = self.actors.get(actor_id)
        if record is None or record.state == DEAD or not record.waiting_args:
            return []
        record.spec = codec.replace(record.spec, ref_args=ref_args)
        record.waiting_args = False
        return self._schedule(record, nodes)

    def lease_granted(
        self, actor_id: ActorID, generation: int, node_id: NodeID, grant: LeaseGrant
    ) -> list[Action]:
        record = self.actors.get(actor_id)
        if record is None or record.generation != generation or record.state == DEAD:
            # Nobody wants this worker any more.
            return [StopWorker(node_id, grant.worker_id, grant.lease_id, "its actor no longer needs it")]
        record.leasing = False
        record.node_id = node_id
        record.lease_id = grant.lease_id
        record.worker_id = grant.worker_id
        record.address = grant.address
        return [CreateOnWorker(actor_id, generation, grant, record.spec)]

    def created(self, actor_id: ActorID, generation: int, error: bytes | None) -> list[Action]:
        record = self.actors.get(actor_id)
        if record is None or record.generation != generation or record.state == DEAD:
            return []
        if error is not None:
            # A constructor that raised fails every call; restarting would raise again.
            record.creation_error = error
            return self._die(record, "the actor's constructor raised an exception")
        record.state = ALIVE
        record.death_cause = ""
        return [Publish(_info(record))]

    def creation_failed(
        self, actor_id: ActorID, generation: int, reason: str, nodes: list[NodeView]
    ) -> list[Action]:
        """The lease or the CreateActor call failed (the worker vanished, the node went)."""
        record = self.actors.get(actor_id)
        if record is None or record.generation != generation or record.state == DEAD:
            return []
        return self._lost(record, reason, nodes)

    def worker_died(self, worker_id: WorkerID, reason: str, nodes: list[NodeView]) -> list[Action]:
        """A worker exited: the actor it hosted (if any) is lost, and the non-detached
        actors it owned die with it."""
        actions: list[Action] = []
        for record in list(self.actors.values()):
            if record.worker_id == worker_id and record.state in (PENDING, ALIVE):
                actions += self._lost(record, reason, nodes)
        return actions + self._owners_died(lambda owner: owner.worker_id == worker_id, nodes)

    def owners_node_died(self, node_id: NodeID, nodes: list[NodeView]) -> list[Action]:
        """A node died, and every process on it: the non-detached actors owned there die
        too (no node is left to tell of each owner's death)."""
        return self._owners_died(lambda owner: owner.node_id == node_id, nodes)

    def _owners_died(self, died: Callable[[Address], bool], nodes: list[NodeView]) -> list[Action]:
        actions: list[Action] = []
        for record in list(self.actors.values()):
            if not record.spec.detached and record.state != DEAD and died(record.spec.owner):
                actions += self.kill(record.spec.actor_id, True, "its owner has died", nodes)
        return actions

    def exiting(self, actor_id: ActorID, reason: str) -> list[Action]:
        record = self.actors.get(actor_id)
        if record is not None and record.state != DEAD:
            record.final = True
            record.final_cause = reason
        return []

    def kill(self, actor_id: ActorID, no_restart: bool, reason: str, nodes: list[NodeView]) -> list[Action]:
        record = self.actors.get(actor_id)
        if record is None or record.state == DEAD:
            return []
        if no_restart:
            record.final = True
            record.final_cause = reason
        if record.worker_id is not None and record.node_id is not None and record.lease_id is not None:
            stop = StopWorker(record.node_id, record.worker_id, record.lease_id, reason)
            return [stop, *self._lost(record, reason, nodes)]
        # Not placed yet: nothing to stop.
        return self._die(record, reason) if no_restart else []

    def owner_died(self, worker_id: WorkerID, nodes: list[NodeView]) -> list[Action]:
        return self.worker_died(worker_id, "", nodes)

    def job_finished(self, job_id: JobID, nodes: list[NodeView]) -> list[Action]:
        actions: list[Action] = []
        for record in list(self.actors.values()):
            if record.spec.job_id == job_id and not record.spec.detached and record.state != DEAD:
                actions += self.kill(record.spec.actor_id, True, "its job finished", nodes)
        return actions

    def restore(self, records: list[ActorRecord]) -> list[Action]:
        """Take back the actors a previous gcs stored: live ones are watched again; those
        that were being placed are placed afresh when nodes register (``retry_pending``)."""
        actions: list[Action] = []
        for record in records:
            self.actors[record.spec.actor_id] = record
            if record.spec.name and record.state != DEAD:
                self.named[(record.spec.namespace, record.spec.name)] = record.spec.actor_id
            if record.state == ALIVE and record.worker_id is not None and record.address is not None:
                actions.append(
                    Watch(record.spec.actor_id, record.generation, record.worker_id, record.address)
                )
            elif record.state in (PENDING, RESTARTING):
                # A lease or creation in flight died with the previous gcs: end the worker
                # it had leased, if any, and start over.
                if (
                    record.worker_id is not None
                    and record.node_id is not None
                    and record.lease_id is not None
                ):
                    actions.append(
                        StopWorker(
                            record.node_id,
                            record.worker_id,
                            record.lease_id,
                            "its actor's creation was cut off by a gcs restart",
                        )
                    )
                record.generation += 1
                record.worker_id = record.lease_id = record.node_id = None
                record.address = None
        return actions

    def retry_pending(self, nodes: list[NodeView]) -> list[Action]:
        """Nodes changed: try again to place actors that could not be placed."""
        actions: list[Action] = []
        for record in self.actors.values():
            if _unplaced(record):
                actions += self._schedule(record, nodes)
        return actions

    # -- transitions -----------------------------------------------------------------------------
    def _lost(self, record: ActorRecord, reason: str, nodes: list[NodeView]) -> list[Action]:
        record.worker_id = record.lease_id = record.node_id = None  # its address is kept: see _die
        restarts = record.spec.max_restarts
        if record.final or (restarts != -1 and record.num_restarts >= restarts):
            return self._die(record, record.final_cause if record.final else reason)
        record.num_restarts += 1
        record.state = RESTARTING
        record.death_cause = reason
        return [Publish(_info(record)), *self._schedule(record, nodes)]

    def _die(self, record: ActorRecord, cause: str) -> list[Action]:
        actions: list[Action] = []
        if record.worker_id is not None and record.node_id is not None and record.lease_id is not None:
            actions.append(StopWorker(record.node_id, record.worker_id, record.lease_id, cause))
        record.state = DEAD
        record.death_cause = cause
        record.worker_id = record.lease_id = record.node_id = None
        # The address stays (unpublished while dead): where it ran, for the state API and logs.
        if (
            record.spec.name
            and self.named.get((record.spec.namespace, record.spec.name)) == record.spec.actor_id
        ):
            del self.named[(record.spec.namespace, record.spec.name)]
        actions.append(Publish(_info(record)))
        return actions

    def _schedule(self, record: ActorRecord, nodes: list[NodeView]) -> list[Action]:
        record.generation += 1
        record.leasing = False
        if self.placing_paused:
            return []
        entries = [NodeEntry(n.node_id, "", n.total, n.available, n.labels) for n in nodes]
        decision = self._placer.place(
            entries, record.spec.placement or record.spec.resources, record.spec.strategy
        )
        if isinstance(decision, PlacementRefused):
            # A hard constraint that cannot hold (node affinity to a dead node): fail now
            # rather than wait forever.
            return self._die(record, f"The actor is not schedulable: {decision.reason}.")
        if not isinstance(decision, Chosen):
            need = record.spec.placement or record.spec.resources
            return [
                Unschedulable(
                    record.spec.actor_id,
                    f"The actor {record.spec.class_name} needs {need}, which no node in the cluster "
                    "can provide. It stays pending until a node that fits joins the cluster.",
                )
            ]
        record.node_id = None
        record.leasing = True
        return [LeaseWorker(record.spec.actor_id, record.generation, decision.node.node_id, record.spec)]


def _unplaced(record: ActorRecord) -> bool:
    """Waiting for a node that can hold it: not placed, not being leased, not waiting for
    its constructor's arguments."""
    return (
        record.state in (PENDING, RESTARTING)
        and record.node_id is None
        and record.worker_id is None
        and not record.waiting_args
        and not record.leasing
    )


def _info(record: ActorRecord) -> ActorInfo:
    spec = record.spec
    return ActorInfo(
        actor_id=spec.actor_id,
        state=record.state,
        address=record.address if record.state == ALIVE else None,
        last_address=record.address if record.state == DEAD else None,
        num_restarts=record.num_restarts,
        death_cause=record.death_cause,
        creation_error=record.creation_error,
        class_name=spec.class_name,
        name=spec.name,
        namespace=spec.namespace,
        detached=spec.detached,
        methods=spec.methods,
        max_task_retries=spec.max_task_retries,
        max_pending_calls=spec.max_pending_calls,
        is_async=spec.is_async,
        owner=spec.owner,
    )


def encode_record(record: ActorRecord) -> bytes:
    """An actor's record as stored by the gcs (its storage holds bytes)."""
    return codec.encode(
        [
            record.spec,
            record.state,
            record.generation,
            _raw(record.node_id),
            _raw(record.lease_id),
            _raw(record.worker_id),
            record.address,
            record.num_restarts,
            record.death_cause,
            record.creation_error,
            record.final,
            record.final_cause,
            record.waiting_args,
        ]
    )


def decode_record(blob: bytes) -> ActorRecord:
    (
        spec,
        state,
        generation,
        node,
        lease,
        worker,
        address,
        restarts,
        cause,
        error,
        final,
        final_cause,
        waiting,
    ) = codec.decode(blob)
    return ActorRecord(
        spec,
        state,
        generation,
        None if node is None else NodeID(node),
        None if lease is None else LeaseID(lease),
        None if worker is None else WorkerID(worker),
        address,
        restarts,
        cause,
        error,
        final,
        final_cause,
        waiting,
    )


def _raw(value: NodeID | LeaseID | WorkerID | None) -> bytes | None:
    return None if value is None else bytes(value)
