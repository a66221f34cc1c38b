"""Calling actors: creation, ordered delivery of method calls, and reacting to restarts.

Runs on the core worker's I/O thread. How calls reach an actor (in submission order over
one connection, and what becomes of them when it breaks or the actor restarts or dies)
is ``ActorCallPolicy``'s decision (see actor_policy.py); this module is the shell around
it: it follows actors at the gcs, connects to them, resolves arguments, sends calls,
feeds the policy events and carries out the actions it returns, and settles replies
through the task manager. Creating an actor (registering it, handing the gcs its
constructor's arguments) is I/O only, and lives here too.
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
from manta._private.common.ids import ActorID, LeaseID
from manta._private.core_worker.actor_policy import (
    Action,
    ActorCallPolicy,
    ActorDead,
    ActorState,
    ArmCheck,
    AskGcs,
    Connect,
    Fail,
    FailWithArgument,
    Follow,
    ResolveArgs,
    Send,
    Settle,
    Warn,
    WarnExcessQueueing,
    Watch,
    death_error,
)
from manta._private.core_worker.arg_resolution import ArgResolution
from manta._private.core_worker.entry_lock import entry, send_from_caller, takes_thread_writes
from manta._private.core_worker.memory_store import MemoryStore, StoredObject
from manta._private.core_worker.object_manager import ObjectManager
from manta._private.core_worker.peers import Peers
from manta._private.core_worker.recovery import LossRecovery
from manta._private.core_worker.task_manager import PendingTask, Retry, TaskManager
from manta._private.rpc import codec
from manta._private.rpc import messages as m
from manta._private.rpc.transport import Connection
from manta.exceptions import RayActorError

__all__ = ["ActorTaskSubmitter", "death_error"]

logger = logging.getLogger(__name__)

_NO_LEASE = LeaseID(b"\x00" * LeaseID.SIZE)


class ActorTaskSubmitter:
    def __init__(
        self,
        peers: Peers,
        task_manager: TaskManager,
        objects: ObjectManager,
        memory_store: MemoryStore,
        recovery: LossRecovery,
        actor_dead: Callable[[ActorID], None],
    ) -> None:
        self._cw = peers
        self._tasks = task_manager
        self._objects = objects
        self._memory_store = memory_store
        self._recovery = recovery
        self._actor_dead = actor_dead  # the actor is dead for good (its owner's handles)
        self._lock = threading.RLock()  # see entry_lock.py
        # The loop's clock, since check timers are armed on the loop.
        self._policy = ActorCallPolicy(lambda: self._cw.io.loop.time())
        self._handlers: dict[type, Callable[[Any], None]] = {
            Send: self._send,
            Settle: self._settle,
            ResolveArgs: self._resolve_args,
            Fail: self._fail,
            FailWithArgument: self._fail_with_argument,
            Connect: self._connect,
            Watch: self._watch,
            ArmCheck: self._arm_check,
            AskGcs: self._ask_gcs,
            Follow: self._follow,
            Warn: self._warn,
            WarnExcessQueueing: self._warn_excess_queueing,
            ActorDead: self._dead,
        }

    def _run(self, actions: list[Action]) -> None:
        handlers = self._handlers
        for action in actions:
            handlers[type(action)](action)

    # -- creation ----------------------------------------------------------------------------
    @entry
    def create(self, spec: m.ActorSpec, arg_refs: list[Any]) -> None:
        """Register the actor, then hand the gcs its constructor's ref arguments once they
        are ready (I/O thread). Registered at once, it dies with its owner even while it
        waits for them."""
        self._run(self._policy.track(spec.actor_id)[1])
        spawn(self._register(spec, arg_refs), "registering an actor")

    async def _register(self, spec: m.ActorSpec, arg_refs: list[Any]) -> None:
        try:
            info = await self._cw.gcs_call(m.RegisterActor(spec, False, bool(arg_refs)))
        except Exception as e:
            self.on_info(self._dead_info(spec, f"registering it with the gcs failed: {e}"))
            return
        self.on_info(info)
        if arg_refs:
            self.resolve_constructor_args(spec.actor_id, arg_refs)

    def resolve_constructor_args(self, actor_id: ActorID, arg_refs: list[Any]) -> None:
        """Send the actor's constructor arguments to the gcs once all are ready (I/O thread).
        An argument that holds an error goes as it is: the actor's creation fails with it."""
        resolution = ArgResolution(len(arg_refs))

        def ready(index: int, ref: Any, obj: StoredObject) -> None:
            if not self._cw.io.in_loop_thread():
                self._cw.io.call_soon(ready, index, ref, obj)
                return
            if resolution.ready(index, ref.id, obj):
                spawn(self._args_ready(actor_id, list(resolution.args)), "sending an actor's arguments")

        for index, ref in enumerate(arg_refs):
            self._objects.request_object(ref)
            self._memory_store.on_ready(ref.id, partial(ready, index, ref))

    async def _args_ready(self, actor_id: ActorID, ref_args: list[m.ArgValue]) -> None:
        try:
            await self._cw.gcs_call(m.ActorArgsReady(actor_id, ref_args))
        except Exception as e:
            logger.error("cannot hand actor %s its constructor arguments: %s", actor_id.hex(), e)

    def _dead_info(self, spec: m.ActorSpec, cause: str) -> m.ActorInfo:
        return m.ActorInfo(
            spec.actor_id, "DEAD", None, 0, cause, None, spec.class_name, spec.name, spec.namespace,
            spec.detached, spec.methods, spec.max_task_retries, spec.max_pending_calls, spec.is_async, spec.owner,
        )  # fmt: skip

    # -- calls ----------------------------------------------------------------------------------
    @entry
    def submit(self, task: PendingTask) -> None:
        self._run(self._policy.submit(task))

    def send_now(self, task: PendingTask) -> bool:
        """From the thread that submits ``task`` (its arguments resolved): send it from
        here to its actor if that is connected with no call pending; False if not (nothing
        was done)."""
        decide = partial(self._policy.send_now, task, takes_thread_writes)
        return send_from_caller(self._lock, self._tasks.events, decide, self._send_from_caller)

    def _send_from_caller(self, action: Send) -> None:
        conn = action.actor.conn
        msg = m.PushTask(action.task.spec, _NO_LEASE, {})
        if conn.call_from_thread(msg, partial(self._replied, action.actor, action.task)) is None:
            # It closed: the loop's send on it fails (the actor may have no connection by then).
            self._cw.io.call_soon(self._call, conn, action)

    def _resolve_args(self, action: ResolveArgs) -> None:
        actor, task = action.actor, action.task
        resolution = ArgResolution(len(task.arg_refs))
        task.resolved = resolution.values  # type: ignore[assignment]

        def ready(index: int, ref: Any, obj: StoredObject) -> None:
            if not self._cw.io.in_loop_thread():
                self._cw.io.call_soon(ready, index, ref, obj)
                return
            if resolution.ready(index, ref.id, obj):
                task.spec = codec.replace(task.spec, ref_args=list(resolution.args))
                with self._lock:
                    self._run(self._policy.args_ready(actor, task, resolution.failed_arg()))

        for index, ref in enumerate(task.arg_refs):
            self._objects.request_object(ref)
            self._memory_store.on_ready(ref.id, partial(ready, index, ref))

    def _send(self, action: Send) -> None:
        if action.task.spec.task_events:
            self._tasks.events.transition(action.task.spec, te.SUBMITTED_TO_WORKER)
        self._call(action.actor.conn, action)

    def _call(self, conn: Connection, action: Send) -> None:
        fut = conn.call(m.PushTask(action.task.spec, _NO_LEASE, {}))
        fut.add_done_callback(partial(self._replied, action.actor, action.task))

    @entry
    def _replied(self, actor: ActorState, task: PendingTask, fut: asyncio.Future[Any]) -> None:
        result = None if fut.exception() is not None else fut.result()
        self._run(self._policy.replied(actor, task, result))

    def _settle(self, action: Settle) -> None:
        outcome = self._tasks.on_result(action.task, action.result)
        if isinstance(outcome, Retry):
            self._run(self._policy.retry(action.actor, outcome.task, await_args=bool(outcome.lost_args)))
            if outcome.lost_args:
                spawn(self._resend_when_recovered(action.actor, outcome), "recovering lost task arguments")

    async def _resend_when_recovered(self, actor: ActorState, outcome: Retry) -> None:
        try:
            await self._recovery.recover_lost_args(outcome.lost_args)
        finally:
            # Its arguments again, waiting for the new copies.
            self._resolve_args(ResolveArgs(actor, outcome.task))
        with self._lock:
            self._run(self._policy.pump(actor))

    def _fail(self, action: Fail) -> None:
        self._tasks.fail(action.task, action.error)

    def _fail_with_argument(self, action: FailWithArgument) -> None:
        self._tasks.fail_with_argument(action.task, action.blob)

    # -- connections ----------------------------------------------------------------------------
    def _connect(self, action: Connect) -> None:
        spawn(self._connect_actor(action.actor, action.info), "connecting to an actor")

    async def _connect_actor(self, actor: ActorState, info: m.ActorInfo) -> None:
        assert info.address is not None
        try:
            conn = await self._cw.connect_worker(info.address)
        except Exception as e:
            logger.info("cannot reach actor %s at %s: %s", actor.actor_id.hex(), info.address, e)
            with self._lock:
                self._run(self._policy.connect_failed(actor))
            return
        conn.allow_writes_from_threads()  # for send_now
        with self._lock:
            self._run(self._policy.connected(actor, info, conn))

    def _watch(self, action: Watch) -> None:
        actor = action.actor
        action.conn.add_close_callback(lambda c: self._connection_lost(actor, c))
        self._run(self._policy.pump(actor))

    @entry
    def _connection_lost(self, actor: ActorState, conn: Connection) -> None:
        self._run(self._policy.connection_lost(actor, conn, shutting_down=self._cw.closed))

    def _arm_check(self, action: ArmCheck) -> None:
        self._cw.io.loop.call_at(action.at, self._check, action.actor)

    @entry
    def _check(self, actor: ActorState) -> None:
        self._run(self._policy.check(actor))

    def _ask_gcs(self, action: AskGcs) -> None:
        spawn(self._refresh(action.actor, checked=True), "actor check")

    # -- state from the gcs ----------------------------------------------------------------------
    @entry
    def on_info(self, info: m.ActorInfo, checked: bool = False) -> None:
        self._run(self._policy.actor_info(info, checked))

    def _warn(self, action: Warn) -> None:
        self._cw.warn(action.message)

    def _warn_excess_queueing(self, action: WarnExcessQueueing) -> None:
        """Told to the job's driver (as in Ray, an ``excess_queueing_warning`` error push)."""
        self._cw.push_error("excess_queueing_warning", action.message)

    def _dead(self, action: ActorDead) -> None:
        self._actor_dead(action.actor_id)

    def death_error(self, actor_id: ActorID) -> RayActorError:
        return self._policy.death_error(actor_id)

    def _follow(self, action: Follow) -> None:
        spawn(self._subscribe(action.actor), "subscribing to an actor")

    async def _subscribe(self, actor: ActorState) -> None:
        try:
            await self._cw.subscribe_gcs("actor", bytes(actor.actor_id))
        except Exception as e:
            logger.warning("cannot follow actor %s: %s", actor.actor_id.hex(), e)
            return
        await self._refresh(actor)

    def refresh_all(self) -> None:
        """Ask the gcs for the state of every actor followed here (after a reconnection:
        what changed meanwhile was published to nobody)."""
        for actor in list(self._policy.actors.values()):
            spawn(self._refresh(actor), "refreshing an actor's state")

    async def _refresh(self, actor: ActorState, checked: bool = False) -> None:
        """Ask the gcs for the actor's state (``checked``: a check after a broken
        connection, whose failure the next check retries quietly)."""
        try:
            info = await self._cw.gcs_call(m.GetActorInfo(actor.actor_id))
        except Exception as e:
            if not checked:
                logger.warning("cannot follow actor %s: %s", actor.actor_id.hex(), e)
            return
        if info is not None:
            self.on_info(info, checked)

    def is_created(self, actor_id: ActorID) -> bool:
        """Whether the actor's constructor has run (it is or was alive), as known here."""
        return self._policy.is_created(actor_id)

    def cancel_creation(self, actor_id: ActorID) -> None:
        """Its owner dropped the last handle before it was made: it is not made at all."""
        msg = m.KillActor(actor_id, True, "its handle went out of scope before it was created")
        spawn(self._tell_gcs(msg), "cancelling an actor's creation")

    async def _tell_gcs(self, msg: Any) -> None:
        try:
            await self._cw.gcs_call(msg)
        except Exception as e:
            logger.warning("cannot reach the gcs (%s): %s", type(msg).__name__, e)

    def pending_calls(self, actor_id: ActorID) -> int:
        return self._policy.pending_calls(actor_id)
