"""Submitting normal tasks: resolve arguments, lease workers, push tasks to them directly.

Runs on the core worker's I/O thread, but for one step: a task submitted while a lease of
its class idles is pushed by the submitting thread itself (``push_now``), sparing the I/O
thread a wake-up on a submit-then-get loop's path (see entry_lock.py). Which lease runs
which task, how many lease requests to keep outstanding and when to give a lease back are
``LeasePolicy``'s decisions (see lease_policy.py); this module is the shell around it: it
resolves arguments, feeds the policy events and carries out the actions it returns
(requests to node daemons, pushes to workers, timers), and settles outcomes through the
task manager.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from manta._private.common import task_events as te
from manta._private.common.aio import spawn
from manta._private.common.config import Config
from manta._private.common.ids import NodeID
from manta._private.core_worker.arg_resolution import ArgResolution
from manta._private.core_worker.entry_lock import entry, send_from_caller, takes_thread_writes
from manta._private.core_worker.lease_policy import (
    Action,
    ArmLinger,
    CancelLinger,
    CancelRequest,
    Connect,
    Fail,
    Interrupt,
    Lease,
    LeasePolicy,
    Push,
    RequestWorker,
    ReturnWorker,
    SchedulingClass,
    Settle,
    Warn,
)
from manta._private.core_worker.locality import preferred_node
from manta._private.core_worker.memory_store import MemoryStore, StoredObject
from manta._private.core_worker.object_manager import ObjectManager
from manta._private.core_worker.peers import Peers
from manta._private.core_worker.recovery import LossRecovery
from manta._private.core_worker.task_manager import Done, PendingTask, Retry, TaskManager
from manta._private.rpc import codec
from manta._private.rpc.messages import (
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
    WorkerExit,
)
from manta._private.rpc.transport import Connection, ConnectionLost
from manta.exceptions import TaskCancelledError

logger = logging.getLogger(__name__)

# Hops a lease request may take between node daemons before it starts over at home.
_MAX_SPILLBACKS = 4
# How long finding and reaching the node that holds a task's arguments may take.
_LOCALITY_LOOKUP_S = 2.0


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
        self._tasks = task_manager
        self._objects = objects
        self._memory_store = memory_store
        self._recovery = recovery
        self._lock = threading.RLock()  # see entry_lock.py
        # The loop's clock, since linger timers are armed on the loop.
        self._policy = LeasePolicy(config, lambda: self._cw.io.loop.time())
        # The node daemon each outstanding lease request waits at.
        self._request_nodes: dict[int, Connection] = {}
        self._lingers: dict[Lease, asyncio.TimerHandle] = {}
        self._handlers: dict[type, Callable[[Any], None]] = {
            Push: self._push,
            Settle: self._settle_result,
            ArmLinger: self._arm_linger,
            CancelLinger: self._cancel_linger,
            RequestWorker: self._request_worker,
            CancelRequest: self._cancel_request,
            Connect: self._connect,
            ReturnWorker: self._return_worker,
            Fail: self._fail,
            Interrupt: self._interrupt,
            Warn: self._warn,
        }

    def _run(self, actions: list[Action]) -> None:
        handlers = self._handlers
        for action in actions:
            handlers[type(action)](action)

    # -- entry points (I/O thread) --------------------------------------------------------
    @entry
    def submit(self, task: PendingTask) -> None:
        if task.cancelled:
            self._tasks.fail(task, TaskCancelledError(task.task_id.hex()))
            return
        if not task.arg_refs or task.resolved:
            self._run(self._policy.enqueue(task))
            return
        resolution = ArgResolution(len(task.arg_refs))
        task.resolved = resolution.values  # type: ignore[assignment]
        for index, ref in enumerate(task.arg_refs):
            self._objects.request_object(ref)
            self._memory_store.on_ready(ref.id, partial(self._arg_ready, task, index, resolution))

    @entry
    def cancel(self, task: PendingTask, force: bool, recursive: bool) -> None:
        self._run(self._policy.cancel(task, force, recursive))

    def push_now(self, task: PendingTask) -> bool:
        """From the thread that submits ``task`` (its arguments resolved): push it to an
        idle lease of its class from here; False if there is none (nothing was done)."""
        decide = partial(self._policy.push_now, task, takes_thread_writes)
        return send_from_caller(self._lock, self._tasks.events, decide, self._push_from_caller)

    def _push_from_caller(self, action: Push) -> None:
        lease, task = action.lease, action.task
        msg = PushTask(task.spec, lease.lease_id, lease.instance_ids)
        if lease.conn.call_from_thread(msg, partial(self._pushed, action.cls, lease, task)) is None:
            self._cw.io.call_soon(self._send_push, action)  # it closed: the loop's push fails

    def _interrupt(self, action: Interrupt) -> None:
        lease, task = action.lease, action.task
        if action.force:
            spawn(self._force_cancel(lease, task, action.recursive), "force-cancelling a task")
        else:
            lease.conn.notify(CancelTask(task.task_id, False, action.recursive))

    async def _force_cancel(self, lease: Lease, task: PendingTask, recursive: bool) -> None:
        # Kill the worker only if the task runs there: one pipelined behind another task
        # is simply dropped, and the other task is left alone.
        assert lease.conn is not None
        try:
            running = await lease.conn.call(CancelTask(task.task_id, True, recursive))
        except Exception:
            return  # the worker is gone already
        if running and task.state == "running":
            lease.node.notify(KillWorker(lease.worker_id, "force-cancelled by its owner"))

    @entry
    def on_infeasible(self, msg: LeaseInfeasible) -> None:
        self._run(self._policy.infeasible(msg.nonce, msg.message))

    def _warn(self, action: Warn) -> None:
        self._cw.warn(action.message)

    # -- arguments ---------------------------------------------------------------------------
    @entry
    def _arg_ready(self, task: PendingTask, index: int, resolution: ArgResolution, obj: StoredObject) -> None:
        if not self._cw.io.in_loop_thread():
            self._cw.io.call_soon(self._arg_ready, task, index, resolution, obj)
            return
        if task.state == "done":
            return  # cancelled (or failed) while it waited: its arguments are released
        if not resolution.ready(index, task.arg_refs[index].id, obj):
            return
        failed = resolution.failed_arg()
        if failed is not None:
            # A failed argument fails the task with the argument's error, unrun.
            self._tasks.fail_with_argument(task, failed)
            return
        task.spec = codec.replace(task.spec, ref_args=task.resolved)
        self._enqueue(task)

    def _enqueue(self, task: PendingTask) -> None:
        """Its arguments resolved (or it runs again): it waits for a worker."""
        if task.spec.task_events:
            self._tasks.events.transition(task.spec, te.PENDING_NODE_ASSIGNMENT)
        self._run(self._policy.enqueue(task))

    # -- lease requests ----------------------------------------------------------------------
    def _request_worker(self, action: RequestWorker) -> None:
        fut: asyncio.Future[Any] = self._cw.io.loop.create_future()
        fut.add_done_callback(partial(self._lease_replied, action.cls, action.nonce))
        spawn(self._follow_spillbacks(action.cls, action.nonce, fut), "requesting a lease")

    def _cancel_request(self, action: CancelRequest) -> None:
        node = self._request_nodes.get(action.nonce, self._cw.node_conn)
        node.notify(CancelLeaseRequest(action.nonce))

    async def _follow_spillbacks(self, cls: SchedulingClass, nonce: int, fut: asyncio.Future[Any]) -> None:
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
                self._request_nodes[nonce] = node
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

    def _locality_target(self, cls: SchedulingClass) -> NodeID | None:
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

    @entry
    def _lease_replied(self, cls: SchedulingClass, nonce: int, fut: asyncio.Future[Any]) -> None:
        self._request_nodes.pop(nonce, None)
        self._policy.request_ended(cls, nonce)
        if fut.cancelled():
            return
        error = fut.exception()
        if error is not None:
            # The node daemon refused or is gone: nothing queued here can run.
            if self._cw.closed:
                return
            logger.error("lease request failed: %s", error)
            self._run(self._policy.request_failed(cls, self._cw.node_failure_error(error)))
            return
        node, reply = fut.result()
        if isinstance(reply, LeaseRefused):
            self._run(self._policy.refused(cls, reply.error, reply.reason))
        elif isinstance(reply, LeaseCancelled):
            self._run(self._policy.request_cancelled(cls))
        else:
            assert isinstance(reply, LeaseGrant)
            lease = Lease(reply.lease_id, reply.worker_id, reply.address, reply.instance_ids, node)
            self._run(self._policy.granted(cls, lease))

    # -- leases ----------------------------------------------------------------------------------
    def _connect(self, action: Connect) -> None:
        spawn(self._connect_lease(action.cls, action.lease), "connecting to a leased worker")

    async def _connect_lease(self, cls: SchedulingClass, lease: Lease) -> None:
        try:
            conn = await self._cw.connect_worker(lease.address)
        except Exception as e:
            logger.warning("cannot reach leased worker %s: %s", lease.address, e)
            with self._lock:
                self._run(self._policy.connect_failed(cls, lease))
            return
        conn.allow_writes_from_threads()  # for push_now
        conn.add_close_callback(lambda _c: self._lease_lost(cls, lease))
        with self._lock:
            self._run(self._policy.connected(cls, lease, conn))

    @entry
    def _lease_lost(self, cls: SchedulingClass, lease: Lease) -> None:
        self._run(self._policy.lease_lost(cls, lease))

    def _return_worker(self, action: ReturnWorker) -> None:
        action.lease.node.notify(ReturnLease(action.lease.lease_id, action.kill))

    def _arm_linger(self, action: ArmLinger) -> None:
        stale = self._lingers.get(action.lease)
        if stale is not None:
            stale.cancel()  # left armed by push_now, which cannot touch the loop's timers
        self._lingers[action.lease] = self._cw.io.loop.call_at(
            action.at, self._linger_over, action.cls, action.lease, action.at
        )

    def _cancel_linger(self, action: CancelLinger) -> None:
        handle = self._lingers.pop(action.lease, None)
        if handle is not None:
            handle.cancel()

    @entry
    def _linger_over(self, cls: SchedulingClass, lease: Lease, at: float) -> None:
        self._lingers.pop(lease, None)
        self._run(self._policy.linger_over(cls, lease, at))

    # -- pushing -------------------------------------------------------------------------------
    def _push(self, action: Push) -> None:
        if action.task.spec.task_events:
            self._tasks.events.transition(action.task.spec, te.SUBMITTED_TO_WORKER)
        self._send_push(action)

    def _send_push(self, action: Push) -> None:
        lease, task = action.lease, action.task
        fut = lease.conn.call(PushTask(task.spec, lease.lease_id, lease.instance_ids))
        fut.add_done_callback(partial(self._pushed, action.cls, lease, task))

    @entry
    def _pushed(
        self, cls: SchedulingClass, lease: Lease, task: PendingTask, fut: asyncio.Future[Any]
    ) -> None:
        error = fut.exception()
        if error is not None:
            self._policy.push_failed(lease, task)
            spawn(self._worker_failed(cls, lease, task, error), "handling a worker failure")
            return
        result = fut.result()
        if result.rejected and task.spec.task_events:  # sent back unrun: it waits for a worker again
            self._tasks.events.transition(task.spec, te.PENDING_NODE_ASSIGNMENT)
        self._run(self._policy.replied(cls, lease, task, result))

    async def _worker_failed(
        self, cls: SchedulingClass, lease: Lease, task: PendingTask, error: BaseException
    ) -> None:
        self._lease_lost(cls, lease)
        if self._cw.closed:
            return  # the driver is shutting down: nothing to retry for
        why, out_of_memory = await self._death_cause(lease, error)
        if task.retries_left != 0 and not task.cancelled:
            left = "infinite" if task.retries_left < 0 else task.retries_left
            self._cw.warn(
                f"Task {task.spec.name} failed; {left} retries remain, so it will be retried. {why}",
                once=False,
            )
        with self._lock:
            self._settle(cls, self._tasks.on_worker_died(task, why, out_of_memory))

    async def _death_cause(self, lease: Lease, error: BaseException) -> tuple[str, bool]:
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

    # -- settling ------------------------------------------------------------------------------
    def _settle_result(self, action: Settle) -> None:
        self._settle(action.cls, self._tasks.on_result(action.task, action.result))

    def _fail(self, action: Fail) -> None:
        self._tasks.fail(action.task, action.error)

    def _settle(self, cls: SchedulingClass, outcome: Retry | Done) -> None:
        if isinstance(outcome, Retry):
            self._retry(outcome)
        elif outcome.unwanted:
            self._objects.free_store_copies(outcome.unwanted)
        self._run(self._policy.pump(cls))

    def _retry(self, outcome: Retry) -> None:
        """Run a task again (the one place retries are carried out): at once, or once the
        arguments the store lost are made again."""
        if outcome.lost_args:
            spawn(self._resubmit_when_recovered(outcome), "recovering lost task arguments")
        else:
            self._enqueue(outcome.task)

    async def _resubmit_when_recovered(self, outcome: Retry) -> None:
        try:
            await self._recovery.recover_lost_args(outcome.lost_args)
        finally:
            self.submit(outcome.task)  # resolves its arguments again, waiting for new copies
