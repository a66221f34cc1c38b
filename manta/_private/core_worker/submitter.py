"""Submitting normal tasks: resolve arguments, lease workers, push tasks to them directly.

Runs on the core worker's I/O thread only. Tasks are grouped by *scheduling class*
(resource shape, runtime environment, strategy); each class has a queue, the leases it
holds and the lease requests it has outstanding at the local node daemon. A granted
lease is a worker the owner may push tasks to until it returns the lease; the owner reuses
it for every queued task of the class, and keeps it for a short linger when the queue
runs dry so a submit-then-get loop does not pay a lease round trip per task.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from manta._private.common.aio import spawn
from manta._private.common.config import Config
from manta._private.common.ids import LeaseID, NodeID, WorkerID
from manta._private.common.runtime_env import runtime_env_key
from manta._private.core_worker.locality import preferred_node
from manta._private.core_worker.memory_store import MemoryStore, StoredObject
from manta._private.core_worker.objects import ObjectManager
from manta._private.core_worker.peers import Peers
from manta._private.core_worker.recovery import LossRecovery
from manta._private.core_worker.task_manager import Done, PendingTask, Retry, TaskManager
from manta._private.rpc import codec
from manta._private.rpc.messages import (
    Address,
    ArgValue,
    CancelLeaseRequest,
    CancelTask,
    GetWorkerExit,
    KillWorker,
    LeaseCancelled,
    LeaseGrant,
    LeaseInfeasible,
    LeaseRefused,
    LeaseSpillback,
    PushTask,
    RequestLease,
    ReturnLease,
    TaskResult,
    WorkerExit,
)
from manta._private.rpc.transport import Connection, ConnectionLost
from manta.exceptions import TaskCancelledError, TaskPlacementGroupRemoved, TaskUnschedulableError

logger = logging.getLogger(__name__)

# Hops a lease request may take between node daemons before it starts over at home.
_MAX_SPILLBACKS = 4
# How long finding and reaching the node that holds a task's arguments may take.
_LOCALITY_LOOKUP_S = 2.0


@dataclass(eq=False, slots=True)
class _Lease:
    lease_id: LeaseID
    worker_id: WorkerID
    address: Address
    instance_ids: dict[str, list[str]]
    # The node daemon that granted it (this node's, or one a request spilled back to).
    node: Connection
    conn: Connection | None = None
    in_flight: dict[Any, PendingTask] = field(default_factory=dict)
    linger: asyncio.TimerHandle | None = None
    dead: bool = False
    # The worker said it will exit (max_calls): push nothing more, return it once empty.
    draining: bool = False
    # The worker sent pipelined tasks back (its task ran long): one task at a time
    # until it is idle again.
    no_pipeline: bool = False


@dataclass(eq=False, slots=True)
class _SchedulingClass:
    key: Hashable
    resources: dict[str, float]
    runtime_env_key: str
    strategy: Any
    queue: deque[PendingTask] = field(default_factory=deque)
    leases: list[_Lease] = field(default_factory=list)
    requests: dict[int, asyncio.Future[Any]] = field(default_factory=dict)
    # The node daemon each outstanding request waits at.
    request_nodes: dict[int, Connection] = field(default_factory=dict)
    # Requests we asked the node to drop; they end with LeaseCancelled (or a late grant).
    cancelling: set[int] = field(default_factory=set)
    warned_infeasible: bool = False


class NormalTaskSubmitter:
    def __init__(
        self,
        peers: Peers,
        config: Config,
        task_manager: TaskManager,
        objects: ObjectManager,
        memory_store: MemoryStore,
        recovery: LossRecovery,
    ) -> None:
        self._cw = peers
        self._config = config
        self._tasks = task_manager
        self._objects = objects
        self._memory_store = memory_store
        self._recovery = recovery
        self._classes: dict[Hashable, _SchedulingClass] = {}
        self._by_nonce: dict[int, _SchedulingClass] = {}
        self._nonces = itertools.count(1)
        # Moving average of each function's run time, to decide whether to pipeline it.
        self._run_time: dict[bytes, float] = {}

    # -- entry points (I/O thread) --------------------------------------------------------
    def submit(self, task: PendingTask) -> None:
        if task.cancelled:
            self._tasks.fail(task, TaskCancelledError(task.task_id.hex()))
            return
        if not task.arg_refs or task.resolved:
            self._enqueue(task)
            return
        waiting = {"left": len(task.arg_refs)}
        for index, ref in enumerate(task.arg_refs):
            self._objects.request_object(ref)
            self._memory_store.on_ready(ref.id, partial(self._arg_ready, task, index, waiting))

    async def _resubmit_when_recovered(self, outcome: Retry) -> None:
        try:
            await self._recovery.recover_lost_args(outcome.lost_args)
        finally:
            self.submit(outcome.task)  # resolves its arguments again, waiting for new copies

    def cancel(self, task: PendingTask, force: bool, recursive: bool) -> None:
        if task.state == "done":
            return
        task.cancelled = True
        task.force_cancel = force
        if task.state in ("pending", "queued"):
            cls = self._classes.get(task.sched_key)
            if cls is not None and task in cls.queue:
                cls.queue.remove(task)
            self._tasks.fail(task, TaskCancelledError(task.task_id.hex()))
            return
        lease: _Lease | None = task.lease
        if lease is None or lease.dead or lease.conn is None:
            return
        if force:
            spawn(self._force_cancel(lease, task, recursive), "force-cancelling a task")
        else:
            lease.conn.notify(CancelTask(task.task_id, False, recursive))

    async def _force_cancel(self, lease: _Lease, task: PendingTask, recursive: bool) -> None:
        # Kill the worker only if the task runs there: one pipelined behind another task
        # is simply dropped, and the other task is left alone.
        assert lease.conn is not None
        try:
            running = await lease.conn.call(CancelTask(task.task_id, True, recursive))
        except Exception:
            return  # the worker is gone already
        if running and task.state == "running":
            lease.node.notify(KillWorker(lease.worker_id, "force-cancelled by its owner"))

    def on_infeasible(self, msg: LeaseInfeasible) -> None:
        cls = self._by_nonce.get(msg.nonce)
        if cls is not None and not cls.warned_infeasible:
            cls.warned_infeasible = True
            self._cw.warn(msg.message)

    # -- arguments ---------------------------------------------------------------------------
    def _arg_ready(self, task: PendingTask, index: int, waiting: dict[str, int], obj: StoredObject) -> None:
        if not self._cw.io.in_loop_thread():
            self._cw.io.call_soon(self._arg_ready, task, index, waiting, obj)
            return
        if task.state == "done":
            return  # cancelled (or failed) while it waited: its arguments are released
        if not task.resolved:
            task.resolved = [None] * len(task.arg_refs)  # type: ignore[list-item]
        ref = task.arg_refs[index]
        task.resolved[index] = ArgValue(ref.id, obj.inline, obj.node_id, obj.size)
        waiting["left"] -= 1
        if waiting["left"]:
            return
        for arg in task.resolved:
            if arg.inline is not None and self._objects.is_error_blob(arg.inline):
                # A failed argument fails the task with the argument's error, unrun.
                self._tasks.fail_with_argument(task, arg.inline)
                return
        task.spec = codec.replace(task.spec, ref_args=task.resolved)
        self._enqueue(task)

    # -- queueing and leases ---------------------------------------------------------------
    def _enqueue(self, task: PendingTask) -> None:
        cls = self._classes.get(task.sched_key)
        if cls is None:
            spec = task.spec
            env_key = runtime_env_key(spec.runtime_env)
            cls = _SchedulingClass(task.sched_key, spec.resources, env_key, task.strategy)
            self._classes[task.sched_key] = cls
        task.state = "queued"
        cls.queue.append(task)
        self._pump(cls)

    def _capacity(self, task: PendingTask) -> int:
        if task.spec.max_calls:
            return 1  # its worker may exit after it
        run_time = self._run_time.get(task.spec.function_id)
        if run_time is not None and run_time < self._config.pipeline_below_s:
            return self._config.max_tasks_in_flight_per_worker
        return 1

    def _pump(self, cls: _SchedulingClass) -> None:
        while cls.queue:
            capacity = self._capacity(cls.queue[0])
            lease = None
            best = capacity
            for candidate in cls.leases:
                if candidate.conn is None or candidate.draining:
                    continue
                limit = 1 if candidate.no_pipeline else capacity
                if len(candidate.in_flight) < min(best, limit):
                    lease, best = candidate, len(candidate.in_flight)
            if lease is None:
                break
            self._push(cls, lease, cls.queue.popleft())
        wanted = min(len(cls.queue), self._config.max_pending_leases_per_class)
        active = [nonce for nonce in cls.requests if nonce not in cls.cancelling]
        if wanted > len(active):
            for _ in range(wanted - len(active)):
                self._request_lease(cls)
        elif wanted < len(active):
            for nonce in active[wanted:]:
                cls.cancelling.add(nonce)
                cls.request_nodes.get(nonce, self._cw.node_conn).notify(CancelLeaseRequest(nonce))
        for lease in cls.leases:
            if not lease.in_flight and lease.linger is None and lease.conn is not None and not lease.draining:
                lease.linger = self._cw.io.loop.call_later(
                    self._config.lease_linger_s, self._linger_over, cls, lease
                )

    def _request_lease(self, cls: _SchedulingClass) -> None:
        nonce = next(self._nonces)
        fut: asyncio.Future[Any] = self._cw.io.loop.create_future()
        cls.requests[nonce] = fut
        self._by_nonce[nonce] = cls
        fut.add_done_callback(partial(self._lease_replied, cls, nonce))
        spawn(self._follow_spillbacks(cls, nonce, fut), "requesting a lease")

    async def _follow_spillbacks(self, cls: _SchedulingClass, nonce: int, fut: asyncio.Future[Any]) -> None:
        """Ask this node for a lease; where it says another node should grant it, ask that
        one (which queues it rather than spill it again). Resolves ``fut`` with the
        granting node and its reply."""
        node, locality, spilled = self._cw.node_conn, False, False
        try:
            target = self._locality_target(cls)
            if target is not None:
                node, locality = await self._connect_for_locality(target)
            for _hop in range(_MAX_SPILLBACKS):
                if nonce in cls.cancelling:  # cancelled while we were on our way here
                    reply = LeaseCancelled("cancelled by the requester")
                    break
                cls.request_nodes[nonce] = node
                request = RequestLease(
                    nonce,
                    self._cw.job_id,
                    cls.resources,
                    cls.runtime_env_key,
                    cls.strategy,
                    None,
                    spilled,
                    locality,
                )
                locality = False  # only the first node is the owner's choice
                try:
                    reply = await node.call(request)
                except ConnectionLost:
                    if node is self._cw.node_conn:
                        raise
                    # The other node died while our request waited there: the queue pumps
                    # a new request, which this node places with a fresher view.
                    reply = LeaseCancelled("the node holding the request died")
                if not isinstance(reply, LeaseSpillback) or nonce in cls.cancelling:
                    break
                try:
                    node = await self._cw.connect_node(reply.address, reply.node_id)
                    spilled = True
                except (ConnectionLost, OSError) as e:
                    # The view that chose it was stale (the node just died): start over at
                    # home, whose view will have caught up.
                    logger.info(
                        "spillback target %s is unreachable (%s); asking this node again", reply.address, e
                    )
                    await asyncio.sleep(0.2)
                    node, spilled = self._cw.node_conn, False
            else:
                reply = LeaseCancelled("the lease request was spilled back too many times")
            if isinstance(reply, LeaseSpillback):
                reply = LeaseCancelled("cancelled while being spilled back")
        except BaseException as e:
            if not fut.done():
                fut.set_exception(e)
            return
        if not fut.done():
            fut.set_result((node, reply))

    def _locality_target(self, cls: _SchedulingClass) -> NodeID | None:
        """The node holding most of the next task's argument bytes, when its strategy
        leaves the choice to us and that is not this node (Ray's locality-aware leasing)."""
        if cls.strategy != "DEFAULT" or not cls.queue:
            return None
        return preferred_node(cls.queue[0].resolved, self._cw.node_id)

    async def _connect_for_locality(self, target: NodeID) -> tuple[Connection, bool]:
        """A connection to ``target`` to ask for the lease there, or this node's when it
        cannot be reached (False: not a locality request then)."""
        try:
            # Locality is an optimisation: it never holds a lease request up for long.
            address = await asyncio.wait_for(self._cw.node_address(target), _LOCALITY_LOOKUP_S)
            if address is not None:
                return await asyncio.wait_for(
                    self._cw.connect_node(address, target), _LOCALITY_LOOKUP_S
                ), True
        except Exception as e:
            logger.info("the node holding a task's arguments is not reachable now (%r); asking this one", e)
        return self._cw.node_conn, False

    def _lease_replied(self, cls: _SchedulingClass, nonce: int, fut: asyncio.Future[Any]) -> None:
        cls.requests.pop(nonce, None)
        cls.request_nodes.pop(nonce, None)
        cls.cancelling.discard(nonce)
        self._by_nonce.pop(nonce, None)
        if fut.cancelled():
            return
        error = fut.exception()
        if error is not None:
            self._lease_request_failed(cls, error)
            return
        node, reply = fut.result()
        if isinstance(reply, LeaseRefused):
            kind = (
                TaskPlacementGroupRemoved
                if reply.error == "TaskPlacementGroupRemoved"
                else TaskUnschedulableError
            )
            self._fail_queued(cls, kind(reply.reason))
            return
        if isinstance(reply, LeaseCancelled):
            self._pump(cls)
            return
        assert isinstance(reply, LeaseGrant)
        lease = _Lease(reply.lease_id, reply.worker_id, reply.address, reply.instance_ids, node)
        cls.leases.append(lease)
        spawn(self._connect_lease(cls, lease), "connecting to a leased worker")

    async def _connect_lease(self, cls: _SchedulingClass, lease: _Lease) -> None:
        try:
            lease.conn = await self._cw.connect_worker(lease.address)
        except Exception as e:
            logger.warning("cannot reach leased worker %s: %s", lease.address, e)
            self._drop_lease(cls, lease, kill=True)
            self._pump(cls)
            return
        lease.conn.add_close_callback(lambda _c: self._lease_connection_lost(cls, lease))
        self._pump(cls)

    def _lease_request_failed(self, cls: _SchedulingClass, error: BaseException) -> None:
        # The node daemon refused or is gone: nothing queued here can run.
        if self._cw.closed:
            return
        logger.error("lease request failed: %s", error)
        self._fail_queued(cls, self._cw.node_failure_error(error))

    def _fail_queued(self, cls: _SchedulingClass, error: BaseException) -> None:
        while cls.queue:
            self._tasks.fail(cls.queue.popleft(), error)

    def _linger_over(self, cls: _SchedulingClass, lease: _Lease) -> None:
        lease.linger = None
        if not lease.in_flight and not cls.queue:
            self._drop_lease(cls, lease, kill=False)

    def _drop_lease(self, cls: _SchedulingClass, lease: _Lease, kill: bool) -> None:
        if lease in cls.leases:
            cls.leases.remove(lease)
        if lease.linger is not None:
            lease.linger.cancel()
            lease.linger = None
        if not lease.dead:
            lease.dead = True
            lease.node.notify(ReturnLease(lease.lease_id, kill))

    def _lease_connection_lost(self, cls: _SchedulingClass, lease: _Lease) -> None:
        self._drop_lease(cls, lease, kill=True)

    # -- pushing -------------------------------------------------------------------------------
    def _push(self, cls: _SchedulingClass, lease: _Lease, task: PendingTask) -> None:
        assert lease.conn is not None
        if lease.linger is not None:
            lease.linger.cancel()
            lease.linger = None
        task.state = "running"
        task.lease = lease
        lease.in_flight[task.task_id] = task
        fut = lease.conn.call(PushTask(task.spec, lease.lease_id, lease.instance_ids))
        fut.add_done_callback(partial(self._pushed, cls, lease, task))

    def _pushed(
        self, cls: _SchedulingClass, lease: _Lease, task: PendingTask, fut: asyncio.Future[Any]
    ) -> None:
        lease.in_flight.pop(task.task_id, None)
        error = fut.exception()
        if error is not None:
            spawn(self._worker_failed(cls, lease, task, error), "handling a worker failure")
            return
        result: TaskResult = fut.result()
        if result.worker_exiting:
            lease.draining = True
            if not lease.in_flight:
                self._drop_lease(cls, lease, kill=True)
        if result.rejected:
            # It never ran (the worker is exiting, or sent back a pipelined task): not a failure.
            if not result.worker_exiting and lease.in_flight:
                lease.no_pipeline = True
            task.lease = None
            if task.cancelled:  # cancelled while it waited there: it never runs
                self._tasks.fail(task, TaskCancelledError(task.task_id.hex()))
            else:
                task.state = "queued"
                cls.queue.appendleft(task)
            self._pump(cls)
            return
        fid = task.spec.function_id
        previous = self._run_time.get(fid)
        self._run_time[fid] = result.exec_s if previous is None else 0.7 * previous + 0.3 * result.exec_s
        self._settle(cls, self._tasks.on_result(task, result))

    async def _worker_failed(
        self, cls: _SchedulingClass, lease: _Lease, task: PendingTask, error: BaseException
    ) -> None:
        self._drop_lease(cls, lease, kill=True)
        if self._cw.closed:
            return  # the driver is shutting down: nothing to retry for
        why, out_of_memory = await self._death_cause(lease, error)
        if task.retries_left != 0 and not task.cancelled:
            left = "infinite" if task.retries_left < 0 else task.retries_left
            self._cw.warn(
                f"Task {task.spec.name} failed; {left} retries remain, so it will be retried. {why}",
                once=False,
            )
        self._settle(cls, self._tasks.on_worker_died(task, why, out_of_memory))

    async def _death_cause(self, lease: _Lease, error: BaseException) -> tuple[str, bool]:
        """Why the worker died, from its node; and whether the node killed it for memory."""
        try:
            info = await asyncio.wait_for(lease.node.call(GetWorkerExit(lease.worker_id)), 2.0)
        except Exception:
            info = None
        where = f"worker {lease.worker_id.hex()[:8]} (pid={lease.address.pid}, node={lease.address.node_id.hex()[:8]})"
        if isinstance(info, WorkerExit) and info.out_of_memory:
            return info.reason, True  # the node's message says it all, and names the worker
        if isinstance(info, WorkerExit):
            return f"The {where} running this task died: {info.reason}.", False
        return f"The {where} running this task became unreachable: {error}.", False

    def _settle(self, cls: _SchedulingClass, outcome: Retry | Done) -> None:
        if isinstance(outcome, Retry) and outcome.lost_args:
            spawn(self._resubmit_when_recovered(outcome), "recovering lost task arguments")
        elif isinstance(outcome, Retry):
            self._enqueue(outcome.task)
        elif outcome.unwanted:
            self._objects.free_store_copies(outcome.unwanted)
        self._pump(cls)
