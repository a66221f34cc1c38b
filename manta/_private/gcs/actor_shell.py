"""The gcs's actor I/O: carries out what the ActorManager decides.

It leases workers from node daemons (over the connection each node opened to the gcs),
sends ``CreateActor`` to the leased worker, watches that connection to notice the worker's
death, stops workers, and publishes every state change on the ``actor`` channel.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import Any

from manta._private.common.aio import spawn
from manta._private.common.config import Config
from manta._private.common.ids import ActorID, JobID, NodeID, WorkerID
from manta._private.common.placement import check_strategy
from manta._private.common.resources import in_group
from manta._private.common.runtime_env import runtime_env_key
from manta._private.gcs.actor_manager import (
    NODE_DIED,
    Action,
    ActorManager,
    CreateOnWorker,
    LeaseWorker,
    NameTaken,
    NodeView,
    Publish,
    StopWorker,
    Unschedulable,
    Watch,
    decode_record,
    encode_record,
)
from manta._private.gcs.storage import Storage
from manta._private.rpc import codec
from manta._private.rpc import messages as m
from manta._private.rpc.endpoints import connect
from manta._private.rpc.transport import Connection, ConnectionLost, Dispatcher

logger = logging.getLogger(__name__)

_ACTORS = "actors"
_MAX_SPILLBACKS = 4


class ActorDirector:
    def __init__(
        self,
        config: Config,
        token: bytes,
        node_conn: Callable[[NodeID], Connection | None],
        nodes: Callable[[], list[NodeView]],
        publish: Callable[[str, bytes, Any], None],
        storage: Storage,
        reserve: Callable[[NodeID, dict[str, float]], None],
    ) -> None:
        self.manager = ActorManager(max_actors_per_job=config.max_actors_per_job)
        self._storage = storage
        # Counts a lease about to be asked for against the node's free resources, so the
        # next actor is placed knowing it (the node's heartbeat brings the truth later).
        self._reserve = reserve
        self._config = config
        self._token = token
        self._node_conn = node_conn
        self._nodes = nodes
        self._publish = publish
        self._nonces = itertools.count(1)
        # The connection to each live actor's worker, by actor.
        self._worker_conns: dict[ActorID, Connection] = {}
        # Workers to stop on nodes that have not reconnected to this gcs yet.
        self._pending_stops: dict[NodeID, list[StopWorker]] = {}
        self._dead_nodes: set[NodeID] = set()

    def register_handlers(self, d: Dispatcher) -> None:
        d.register(m.RegisterActor, self._h_register)
        d.register(m.GetActorInfo, lambda c, msg: self.manager.info(msg.actor_id))
        d.register(m.GetNamedActor, lambda c, msg: self.manager.lookup(msg.name, msg.namespace))
        d.register(
            m.ListNamedActors,
            lambda c, msg: [list(p) for p in self.manager.list_named(msg.namespace, msg.all_namespaces)],
        )
        d.register(m.KillActor, self._h_kill)
        d.register(m.ActorArgsReady, self._h_args_ready)
        d.register(m.ListActors, lambda c, msg: self.manager.all_infos())
        d.register(m.GetActorDemand, lambda c, msg: self.manager.waiting_for_room())
        d.register(
            m.ActorExiting, lambda c, msg: self.execute(self.manager.exiting(msg.actor_id, msg.reason))
        )

    # -- handlers ------------------------------------------------------------------------------
    def _h_register(self, conn: Connection, msg: m.RegisterActor) -> m.ActorInfo:
        check_strategy(msg.spec.strategy)  # a peer's: refused now, not failing at placement
        try:
            info, actions = self.manager.register(
                msg.spec, msg.get_if_exists, self._nodes(), msg.args_pending
            )
        except NameTaken as e:
            raise ValueError(str(e)) from None
        self.execute(actions)
        return info

    def _h_args_ready(self, conn: Connection, msg: m.ActorArgsReady) -> None:
        actions = self.manager.args_ready(msg.actor_id, msg.ref_args, self._nodes())
        self._save(msg.actor_id)  # a restarted gcs must place it with these arguments
        self.execute(actions)

    def _h_kill(self, conn: Connection, msg: m.KillActor) -> None:
        if self.manager.info(msg.actor_id) is None:
            raise ValueError(f"there is no actor {msg.actor_id.hex()}")
        self.execute(self.manager.kill(msg.actor_id, msg.no_restart, msg.reason, self._nodes()))

    def worker_died(self, msg: m.WorkerDied) -> None:
        # Owners drop the dead worker from their objects' borrowers.
        self._publish("worker_died", b"", m.WorkerGone(msg.worker_id, msg.node_id))
        # An actor's death cause, in Ray's words (people match on them), then the node's.
        reason = f"its worker process has died: {msg.reason}" if msg.reason else "its worker process has died"
        self.execute(self.manager.worker_died(msg.worker_id, reason, self._nodes()))

    def node_died(self, node_id: NodeID) -> None:
        """A node was declared dead (it may only be cut off, its connections still open):
        close the connections to its actors' workers, so they are restarted elsewhere now;
        the actors owned on it end."""
        self._pending_stops.pop(node_id, None)  # its workers are gone with it
        self._dead_nodes.add(node_id)
        for actor_id, conn in list(self._worker_conns.items()):
            record = self.manager.actors.get(actor_id)
            if record is not None and record.node_id == node_id:
                conn.close()
        self.execute(self.manager.owners_node_died(node_id, self._nodes()))

    def group_removed(self, pg_hex: str) -> None:
        """Actors placed in a removed placement group die (they cannot run elsewhere)."""
        for record in list(self.manager.actors.values()):
            needs = {**record.spec.resources, **(record.spec.placement or {})}
            if any(in_group(name, pg_hex) for name in needs):
                self.execute(
                    self.manager.kill(
                        record.spec.actor_id, True, "its placement group was removed", self._nodes()
                    )
                )

    def job_finished(self, job_id: JobID) -> None:
        self.execute(self.manager.job_finished(job_id, self._nodes()))

    def nodes_changed(self) -> None:
        self.execute(self.manager.retry_pending(self._nodes()))

    # -- actions ----------------------------------------------------------------------------------
    def execute(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Publish):
                self._save(action.info.actor_id)
                self._publish("actor", bytes(action.info.actor_id), action.info)
            elif isinstance(action, Watch):
                spawn(self._watch(action), "watching a restored actor")
            elif isinstance(action, LeaseWorker):
                spawn(self._lease(action), "leasing a worker for an actor")
            elif isinstance(action, CreateOnWorker):
                self._save(action.actor_id)  # a restarted gcs must know the lease to end it
                spawn(self._create(action), "creating an actor")
            elif isinstance(action, StopWorker):
                self._stop_worker(action)
            elif isinstance(action, Unschedulable):
                self._unschedulable(action)

    async def _lease(self, action: LeaseWorker) -> None:
        conn = self._node_conn(action.node_id)
        spec = action.spec
        if conn is None:
            self.execute(
                self.manager.creation_failed(
                    action.actor_id, action.generation, "its node is gone", self._nodes()
                )
            )
            return
        node_id = action.node_id
        self._reserve(node_id, spec.placement or spec.resources)
        hops = 0
        try:
            while True:
                request = m.RequestLease(
                    next(self._nonces),
                    spec.job_id,
                    spec.resources,
                    runtime_env_key(spec.runtime_env),
                    spec.strategy,
                    spec.placement,
                    hops > 0,  # a node it was sent on to keeps it if it can
                )
                reply = await conn.call(request)
                if not isinstance(reply, m.LeaseSpillback) or not self._still_wanted(action):
                    break
                # The node knows better (its view is fresher than ours): lease where it
                # says, without counting a restart; after a few hops, pause and ask anew.
                hops += 1
                if hops % _MAX_SPILLBACKS == 0:
                    await asyncio.sleep(0.2)
                target = self._node_conn(reply.node_id)
                if target is not None:
                    conn, node_id = target, reply.node_id
        except Exception as e:
            self.execute(
                self.manager.creation_failed(
                    action.actor_id, action.generation, f"leasing failed: {e}", self._nodes()
                )
            )
            return
        if not isinstance(reply, m.LeaseGrant):
            self.execute(
                self.manager.creation_failed(
                    action.actor_id, action.generation, f"lease refused: {reply}", self._nodes()
                )
            )
            return
        self.execute(self.manager.lease_granted(action.actor_id, action.generation, node_id, reply))

    def _still_wanted(self, action: LeaseWorker) -> bool:
        record = self.manager.actors.get(action.actor_id)
        return record is not None and record.generation == action.generation

    # -- durability -------------------------------------------------------------------------------
    def _save(self, actor_id: ActorID) -> None:
        """Every published state is stored: a restarted gcs takes its actors back."""
        record = self.manager.actors.get(actor_id)
        if record is not None:
            self._storage.put(_ACTORS, bytes(actor_id), encode_record(record))

    def restore(self) -> int:
        records = []
        for key in self._storage.keys(_ACTORS):
            blob = self._storage.get(_ACTORS, key)
            if blob is not None:
                records.append(decode_record(blob))
        self.execute(self.manager.restore(records))
        return len(records)

    async def _watch(self, action: Watch) -> None:
        address = f"{action.address.host}:{action.address.port}"
        try:
            conn = await connect(
                address, self._token, Dispatcher(), kind="gcs", max_frame_bytes=self._config.max_frame_bytes
            )
        except Exception:
            await self._worker_lost(action.actor_id, action.generation, action.worker_id)
            return
        self._follow(conn, action.actor_id, action.generation, action.worker_id)

    def _follow(self, conn: Connection, actor_id: ActorID, generation: int, worker_id: WorkerID) -> None:
        """The actor is lost when the connection to its worker ends."""
        self._worker_conns[actor_id] = conn

        def on_close(_conn: Connection) -> None:
            spawn(self._worker_lost(actor_id, generation, worker_id), "handling an actor's death")

        conn.add_close_callback(on_close)

    async def _create(self, action: CreateOnWorker) -> None:
        grant = action.grant
        address = f"{grant.address.host}:{grant.address.port}"
        try:
            conn = await connect(
                address, self._token, Dispatcher(), kind="gcs", max_frame_bytes=self._config.max_frame_bytes
            )
            self._worker_conns[action.actor_id] = conn  # closed if its node is declared dead
            reply = await conn.call(m.CreateActor(action.spec, grant.lease_id, grant.instance_ids))
        except Exception as e:
            self._worker_conns.pop(action.actor_id, None)
            reason = await self._exit_reason(action.actor_id, grant.worker_id, f"creating it failed: {e}")
            self.execute(
                self.manager.creation_failed(action.actor_id, action.generation, reason, self._nodes())
            )
            return
        if reply.ok:
            self._follow(conn, action.actor_id, action.generation, grant.worker_id)
        else:
            self._worker_conns.pop(action.actor_id, None)
            conn.close()
        self.execute(
            self.manager.created(action.actor_id, action.generation, None if reply.ok else reply.error)
        )

    async def _worker_lost(self, actor_id: ActorID, generation: int, worker_id: WorkerID) -> None:
        self._worker_conns.pop(actor_id, None)
        record = self.manager.actors.get(actor_id)
        if record is None or record.generation != generation or record.worker_id != worker_id:
            return
        if record.node_id in self._dead_nodes:
            reason = NODE_DIED  # Ray's words for it
        else:
            reason = await self._exit_reason(actor_id, worker_id, "its worker became unreachable")
        self.execute(self.manager.worker_died(worker_id, reason, self._nodes()))

    async def _exit_reason(self, actor_id: ActorID, worker_id: WorkerID, fallback: str) -> str:
        record = self.manager.actors.get(actor_id)
        node = self._node_conn(record.node_id) if record is not None and record.node_id is not None else None
        if node is None:
            return fallback
        try:
            info = await asyncio.wait_for(node.call(m.GetWorkerExit(worker_id)), 2.0)
        except ConnectionLost:
            return NODE_DIED  # the node went with its worker
        except Exception:
            return fallback
        if isinstance(info, m.WorkerExit):
            return f"its worker process has died: {info.reason}"
        return fallback

    def _stop_worker(self, action: StopWorker) -> None:
        conn = self._node_conn(action.node_id)
        if conn is None or conn.closed:
            # Its node has not reconnected yet (this gcs just restarted): stop it then.
            self._pending_stops.setdefault(action.node_id, []).append(action)
            return
        conn.notify(m.KillWorker(action.worker_id, action.reason))
        conn.notify(m.ReturnLease(action.lease_id, True))

    def node_registered(self, node_id: NodeID) -> None:
        for action in self._pending_stops.pop(node_id, ()):
            self._stop_worker(action)

    def _unschedulable(self, action: Unschedulable) -> None:
        info = self.manager.info(action.actor_id)
        if info is not None:
            self._publish("actor", bytes(action.actor_id), codec.replace(info, death_cause=action.message))
