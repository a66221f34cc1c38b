"""Calling actors: creation, ordered delivery of method calls, and reacting to restarts.

Runs on the core worker's I/O thread. Calls from this process to one actor are sent over
one connection in submission order (a call whose arguments are not ready holds back the
calls behind it), so a sequential actor runs them in that order. The actor's address and
state come from the gcs (``actor`` channel). When the connection breaks, the calls that
were in flight wait for the gcs's verdict: restarted -> resent if they have retries left,
else ``ActorUnavailableError``; dead -> ``ActorDiedError`` with the cause.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from manta._private import serialization
from manta._private.common.aio import spawn
from manta._private.common.ids import ActorID, LeaseID
from manta._private.core_worker.memory_store import MemoryStore, StoredObject
from manta._private.core_worker.object_manager import ObjectManager
from manta._private.core_worker.peers import Peers
from manta._private.core_worker.recovery import LossRecovery
from manta._private.core_worker.task_manager import PendingTask, Retry, TaskManager
from manta._private.rpc import codec
from manta._private.rpc import messages as m
from manta._private.rpc.transport import Connection
from manta.exceptions import (
    ActorDiedError,
    ActorUnavailableError,
    PendingCallsLimitExceeded,
    RayActorError,
)

logger = logging.getLogger(__name__)

_NO_LEASE = LeaseID(b"\x00" * LeaseID.SIZE)
# Ray's threshold for warning that calls pile up behind an actor (doubled at each warning).
_EXCESS_QUEUEING_WARNING_AT = 5000
# After a broken connection with no word from the gcs, ask it directly.
_CHECK_AFTER_S = 2.0


@dataclass(eq=False, slots=True)
class _Actor:
    actor_id: ActorID
    info: m.ActorInfo | None = None
    conn: Connection | None = None
    connecting: bool = False
    # The restart count of the instance ``conn`` talks to.
    connected_generation: int = -1
    queue: deque[PendingTask] = field(default_factory=deque)
    in_flight: dict[Any, PendingTask] = field(default_factory=dict)
    interrupted: list[PendingTask] = field(default_factory=list)
    warned: bool = False
    # Calls pending beyond this many earn the caller a warning (then twice as many).
    warn_pending_at: int = _EXCESS_QUEUEING_WARNING_AT


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
        self._actors: dict[ActorID, _Actor] = {}

    # -- creation ----------------------------------------------------------------------------
    def create(self, spec: m.ActorSpec, arg_refs: list[Any]) -> None:
        """Register the actor, then hand the gcs its constructor's ref arguments once they
        are ready (I/O thread). Registered at once, it dies with its owner even while it
        waits for them."""
        self._track(spec.actor_id)
        spawn(self._register(spec, arg_refs), "registering an actor")

    async def _register(self, spec: m.ActorSpec, arg_refs: list[Any]) -> None:
        try:
            info = await (await self._cw.gcs_connection()).call(m.RegisterActor(spec, False, bool(arg_refs)))
        except Exception as e:
            self.on_info(self._dead_info(spec, f"registering it with the gcs failed: {e}"))
            return
        self.on_info(info)
        if arg_refs:
            self.resolve_constructor_args(spec.actor_id, arg_refs)

    def resolve_constructor_args(self, actor_id: ActorID, arg_refs: list[Any]) -> None:
        """Send the actor's constructor arguments to the gcs once all are ready (I/O thread)."""
        resolved: list[m.ArgValue | None] = [None] * len(arg_refs)
        left = {"n": len(arg_refs)}

        def ready(index: int, ref: Any, obj: StoredObject) -> None:
            if not self._cw.io.in_loop_thread():
                self._cw.io.call_soon(ready, index, ref, obj)
                return
            resolved[index] = m.ArgValue(ref.id, obj.inline, obj.node_id, obj.size)
            left["n"] -= 1
            if left["n"] == 0:
                spawn(self._args_ready(actor_id, list(resolved)), "sending an actor's arguments")  # type: ignore[arg-type]

        for index, ref in enumerate(arg_refs):
            self._objects.request_object(ref)
            self._memory_store.on_ready(ref.id, partial(ready, index, ref))

    async def _args_ready(self, actor_id: ActorID, ref_args: list[m.ArgValue]) -> None:
        try:
            await (await self._cw.gcs_connection()).call(m.ActorArgsReady(actor_id, ref_args))
        except Exception as e:
            logger.error("cannot hand actor %s its constructor arguments: %s", actor_id.hex(), e)

    def _dead_info(self, spec: m.ActorSpec, cause: str) -> m.ActorInfo:
        return m.ActorInfo(
            spec.actor_id, "DEAD", None, 0, cause, None, spec.class_name, spec.name, spec.namespace,
            spec.detached, spec.methods, spec.max_task_retries, spec.max_pending_calls, spec.is_async, spec.owner,
        )  # fmt: skip

    # -- calls ----------------------------------------------------------------------------------
    def submit(self, task: PendingTask) -> None:
        actor_id = task.spec.actor_id
        assert actor_id is not None
        actor = self._track(actor_id)
        info = actor.info
        if info is not None and info.state == "DEAD":
            self._fail(task, actor)
            return
        limit = info.max_pending_calls if info is not None else 0
        if limit > 0 and len(actor.queue) + len(actor.in_flight) >= limit:
            self._tasks.fail(
                task,
                PendingCallsLimitExceeded(
                    f"the actor {actor_id.hex()} already has {limit} calls pending (max_pending_calls)"
                ),
            )
            return
        actor.queue.append(task)
        task.state = "queued"
        pending = len(actor.queue) + len(actor.in_flight)
        if pending > actor.warn_pending_at:
            self._warn_excess_queueing(actor, pending)
        if task.arg_refs and not task.resolved:
            self._resolve(actor, task)
        self._send(actor)

    def _warn_excess_queueing(self, actor: _Actor, pending: int) -> None:
        """Told to the job's driver (as in Ray, an ``excess_queueing_warning`` error push)."""
        name = actor.info.class_name if actor.info is not None else actor.actor_id.hex()
        text = (
            f"Warning: More than {actor.warn_pending_at} tasks are pending submission to actor "
            f"{name} ({pending} now). To reduce memory use, wait for these calls to finish "
            "before submitting more."
        )
        actor.warn_pending_at *= 2
        self._cw.push_error("excess_queueing_warning", text)

    def _resolve(self, actor: _Actor, task: PendingTask) -> None:
        task.resolved = [None] * len(task.arg_refs)  # type: ignore[list-item]
        left = {"n": len(task.arg_refs)}

        def ready(index: int, ref: Any, obj: StoredObject) -> None:
            if not self._cw.io.in_loop_thread():
                self._cw.io.call_soon(ready, index, ref, obj)
                return
            task.resolved[index] = m.ArgValue(ref.id, obj.inline, obj.node_id, obj.size)
            left["n"] -= 1
            if left["n"] == 0:
                task.spec = codec.replace(task.spec, ref_args=list(task.resolved))
                self._send(actor)

        for index, ref in enumerate(task.arg_refs):
            self._objects.request_object(ref)
            self._memory_store.on_ready(ref.id, partial(ready, index, ref))

    def _send(self, actor: _Actor) -> None:
        info = actor.info
        if info is None or info.state != "ALIVE":
            return
        if actor.conn is None or actor.conn.closed:
            if not actor.connecting:
                actor.connecting = True
                spawn(self._connect(actor, info), "connecting to an actor")
            return
        while actor.queue:
            task = actor.queue[0]
            if task.arg_refs and (not task.resolved or any(v is None for v in task.resolved)):
                return  # its arguments are not ready: later calls wait behind it
            actor.queue.popleft()
            if task.state == "done":
                continue
            for arg in task.spec.ref_args:
                if arg.inline is not None and self._objects.is_error_blob(arg.inline):
                    self._tasks.fail_with_argument(task, arg.inline)
                    break
            else:
                self._push(actor, task)

    async def _connect(self, actor: _Actor, info: m.ActorInfo) -> None:
        assert info.address is not None
        try:
            conn = await self._cw.connect_worker(info.address)
        except Exception as e:
            logger.info("cannot reach actor %s at %s: %s", actor.actor_id.hex(), info.address, e)
            actor.connecting = False
            self._cw.io.loop.call_later(_CHECK_AFTER_S, lambda: spawn(self._check(actor), "actor check"))
            return
        actor.connecting = False
        if actor.info is not info:
            # The state moved on while connecting; start over from the latest.
            self._send(actor)
            return
        actor.conn = conn
        actor.connected_generation = info.num_restarts
        conn.add_close_callback(lambda c: self._connection_lost(actor, c))
        self._send(actor)

    def _push(self, actor: _Actor, task: PendingTask) -> None:
        assert actor.conn is not None
        task.state = "running"
        actor.in_flight[task.task_id] = task
        fut = actor.conn.call(m.PushTask(task.spec, _NO_LEASE, {}))
        fut.add_done_callback(partial(self._replied, actor, task))

    def _replied(self, actor: _Actor, task: PendingTask, fut: asyncio.Future[Any]) -> None:
        error = fut.exception()
        if actor.in_flight.pop(task.task_id, None) is None:
            return  # already handled as interrupted
        if error is not None:
            actor.interrupted.append(task)
            return  # the connection broke; the close callback decides
        outcome = self._tasks.on_result(task, fut.result())
        if isinstance(outcome, Retry):
            actor.queue.appendleft(outcome.task)  # later calls wait behind it, in order
            if outcome.lost_args:
                spawn(self._resend_when_recovered(actor, outcome), "recovering lost task arguments")
                return
            self._send(actor)

    async def _resend_when_recovered(self, actor: _Actor, outcome: Retry) -> None:
        try:
            await self._recovery.recover_lost_args(outcome.lost_args)
        finally:
            self._resolve(actor, outcome.task)  # its arguments again, waiting for the new copies
        self._send(actor)

    def _connection_lost(self, actor: _Actor, conn: Connection) -> None:
        current = actor.conn is conn
        if current:
            actor.conn = None
        # Everything in flight may or may not have run; the gcs's next word decides.
        actor.interrupted.extend(actor.in_flight.values())
        actor.in_flight.clear()
        if self._cw.closed:
            return
        if not current and actor.info is not None and actor.info.num_restarts > actor.connected_generation:
            # The gcs's word came first: this is an earlier instance's connection, and the
            # actor has restarted since. Its calls were cut off by that restart.
            self._settle_interrupted(actor, restarted=True)
            self._send(actor)
            return
        self._cw.io.loop.call_later(_CHECK_AFTER_S, lambda: spawn(self._check(actor), "actor check"))

    async def _check(self, actor: _Actor) -> None:
        if actor.conn is not None and not actor.conn.closed:
            if actor.interrupted:  # cut off on an earlier instance's connection
                self._settle_interrupted(actor, restarted=True)
                self._send(actor)
            return
        try:
            info = await (await self._cw.gcs_connection()).call(m.GetActorInfo(actor.actor_id))
        except Exception:
            return
        if info is not None:
            self.on_info(info, checked=True)

    # -- state from the gcs ----------------------------------------------------------------------
    def on_info(self, info: m.ActorInfo, checked: bool = False) -> None:
        actor = self._track(info.actor_id)
        previous = actor.info
        if previous is not None and _older(info, previous):
            return
        actor.info = info
        if info.state == "PENDING" and info.death_cause and not actor.warned:
            actor.warned = True
            self._cw.warn(info.death_cause)
        if info.state == "DEAD":
            self._actor_dead(info.actor_id)
            # Calls running on it now will never reply (it was killed, or exited): they
            # fail at once, as in Ray, rather than wait for the connection to break.
            actor.interrupted.extend(actor.in_flight.values())
            actor.in_flight.clear()
            self._settle_interrupted(actor, restarted=False)
            while actor.queue:
                self._fail(actor.queue.popleft(), actor)
            return
        restarted = info.num_restarts > actor.connected_generation >= 0
        if info.state == "RESTARTING" or restarted:
            self._settle_interrupted(actor, restarted=True)
            if actor.conn is not None and actor.connected_generation != info.num_restarts:
                actor.conn = None
        elif checked and actor.interrupted and info.state == "ALIVE":
            # Alive and not restarted, yet our connection broke: the calls may have run.
            self._settle_interrupted(actor, restarted=True)
        self._send(actor)

    def _settle_interrupted(self, actor: _Actor, restarted: bool) -> None:
        interrupted, actor.interrupted = actor.interrupted, []
        retry = []
        for task in interrupted:
            if task.state == "done":
                continue
            if restarted and task.retries_left != 0:
                if task.retries_left > 0:
                    task.retries_left -= 1
                task.spec = codec.replace(task.spec, attempt=task.spec.attempt + 1)
                task.state = "queued"
                retry.append(task)
            elif restarted:
                self._tasks.fail(
                    task,
                    ActorUnavailableError(
                        error_msg=f"The actor {actor.actor_id.hex()} is unavailable: its worker died "
                        "while running this call and it is restarting. The task may or may not have been "
                        "executed on the actor; set max_task_retries to retry such calls.",
                        actor_id=actor.actor_id.hex(),
                    ),
                )
            else:
                self._fail(task, actor)
        actor.queue.extendleft(reversed(retry))

    def _fail(self, task: PendingTask, actor: _Actor) -> None:
        self._tasks.fail(task, self.death_error(actor.actor_id))

    def death_error(self, actor_id: ActorID) -> RayActorError:
        actor = self._actors.get(actor_id)
        return death_error(actor_id, actor.info if actor is not None else None)

    def _track(self, actor_id: ActorID) -> _Actor:
        actor = self._actors.get(actor_id)
        if actor is None:
            actor = self._actors[actor_id] = _Actor(actor_id)
            spawn(self._subscribe(actor), "subscribing to an actor")
        return actor

    async def _subscribe(self, actor: _Actor) -> None:
        try:
            await self._cw.subscribe_gcs("actor", bytes(actor.actor_id))
        except Exception as e:
            logger.warning("cannot follow actor %s: %s", actor.actor_id.hex(), e)
            return
        await self._refresh(actor)

    def refresh_all(self) -> None:
        """Ask the gcs for the state of every actor followed here (after a reconnection:
        what changed meanwhile was published to nobody)."""
        for actor in list(self._actors.values()):
            spawn(self._refresh(actor), "refreshing an actor's state")

    async def _refresh(self, actor: _Actor) -> None:
        try:
            info = await (await self._cw.gcs_connection()).call(m.GetActorInfo(actor.actor_id))
        except Exception as e:
            logger.warning("cannot follow actor %s: %s", actor.actor_id.hex(), e)
            return
        if info is not None:
            self.on_info(info)

    def is_created(self, actor_id: ActorID) -> bool:
        """Whether the actor's constructor has run (it is or was alive), as known here."""
        actor = self._actors.get(actor_id)
        info = actor.info if actor is not None else None
        return info is not None and (info.state in ("ALIVE", "RESTARTING") or info.num_restarts > 0)

    def cancel_creation(self, actor_id: ActorID) -> None:
        """Its owner dropped the last handle before it was made: it is not made at all."""
        msg = m.KillActor(actor_id, True, "its handle went out of scope before it was created")
        spawn(self._tell_gcs(msg), "cancelling an actor's creation")

    async def _tell_gcs(self, msg: Any) -> None:
        try:
            await (await self._cw.gcs_connection()).call(msg)
        except Exception as e:
            logger.warning("cannot reach the gcs (%s): %s", type(msg).__name__, e)

    def pending_calls(self, actor_id: ActorID) -> int:
        actor = self._actors.get(actor_id)
        return 0 if actor is None else len(actor.queue) + len(actor.in_flight)


def death_error(actor_id: ActorID, info: m.ActorInfo | None) -> RayActorError:
    """The error a call to a dead actor raises, saying why it died."""
    if info is None:
        return ActorDiedError(error_msg=f"The actor {actor_id.hex()} is dead.", actor_id=actor_id.hex())
    if info.creation_error is not None:
        try:
            error = serialization.from_inline(info.creation_error)
            text = str(error)
        except Exception as e:
            error, text = None, f"(the error could not be decoded: {e})"
        return ActorDiedError(
            error,
            error_msg=f"The actor died because of an error raised in its creation task, {text}",
            actor_id=actor_id.hex(),
        )
    if info.death_cause == "its node has died":
        why = "The actor died because its node has died."  # Ray's words, which people match
    else:
        why = f"The actor is dead because {info.death_cause or 'it exited'}."
    return ActorDiedError(
        error_msg=(
            "The actor died unexpectedly before finishing this task.\n"
            f"\tclass_name: {info.class_name}\n"
            f"\tactor_id: {actor_id.hex()}\n"
            f"\tname: {info.name or '(none)'}\n"
            f"\tnamespace: {info.namespace}\n"
            f"{why}"
        ),
        actor_id=actor_id.hex(),
    )


def _older(new: m.ActorInfo, old: m.ActorInfo) -> bool:
    """Publications can race a direct reply: never step back to an earlier state."""
    order = {"PENDING": 0, "ALIVE": 1, "RESTARTING": 1, "DEAD": 3}
    if old.state == "DEAD":
        return True
    if new.num_restarts != old.num_restarts:
        return new.num_restarts < old.num_restarts
    if old.state == "RESTARTING" and new.state == "ALIVE":
        return False
    return order[new.state] < order[old.state]
