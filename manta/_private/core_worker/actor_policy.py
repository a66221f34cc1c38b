"""How calls reach an actor: the actor submitter's decisions, without I/O.

Calls from this process to one actor go over one connection in submission order: a call
whose arguments are not ready holds back the calls behind it, so a sequential actor runs
them in that order. The actor's address, state and generation (its restart count) come
from the gcs. A broken connection decides nothing by itself: the calls that were in flight
may or may not have run, and wait for the gcs's verdict. Restarted -> each is resent if
it has retries left, else fails with ``ActorUnavailableError``; dead -> every call fails
with ``ActorDiedError`` and the cause. With no word from the gcs ``CHECK_AFTER_S`` after
the break, we ask it. The gcs's word of a death can overtake replies the actor sent before
it died (an actor that exits on purpose answers the calls before its exit call first): the
calls in flight on a connection still open wait for it to close, at most ``CHECK_AFTER_S``.

``ActorCallPolicy`` is a state machine: the shell (``ActorTaskSubmitter``, on the I/O
thread) reports events (a call submitted, its arguments ready, the gcs's word about an
actor, a connection made or lost, a reply, a check timer) and carries out the actions
each returns, in order. Time comes from the injected ``now``; connections are opaque
handles only the shell uses. Settling a reply (results, retries on error) is the task
manager's business: the policy only says when (``Settle``), and takes a retry back with
``retry``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from manta._private import serialization
from manta._private.common.ids import ActorID, TaskID
from manta._private.core_worker.actor_runtime import TERMINATE_METHOD
from manta._private.core_worker.task_manager import PendingTask
from manta._private.rpc.messages import ActorInfo, TaskResult
from manta.exceptions import ActorDiedError, ActorUnavailableError, PendingCallsLimitExceeded, RayActorError

# Ray's threshold for warning that calls pile up behind an actor (doubled at each warning).
EXCESS_QUEUEING_WARNING_AT = 5000
# After a broken connection with no word from the gcs, ask it directly.
CHECK_AFTER_S = 2.0


@dataclass(eq=False, slots=True)
class ActorState:
    actor_id: ActorID
    info: ActorInfo | None = None
    # The connection calls go over (an opaque handle for the shell), once made.
    conn: Any = None
    connecting: bool = False
    # The restart count of the instance ``conn`` talks to (-1: never connected).
    connected_generation: int = -1
    queue: deque[PendingTask] = field(default_factory=deque)
    in_flight: dict[TaskID, PendingTask] = field(default_factory=dict)
    # Calls cut off by a broken connection, waiting for the gcs's verdict.
    interrupted: list[PendingTask] = field(default_factory=list)
    # Queued calls whose ref arguments are not all here yet (they hold back the queue),
    # and those with an argument that holds an error (they fail, unrun, in their turn).
    awaiting_args: set[TaskID] = field(default_factory=set)
    failed_args: dict[TaskID, bytes] = field(default_factory=dict)
    warned: bool = False
    # Calls pending beyond this many earn the caller a warning (then twice as many).
    warn_pending_at: int = EXCESS_QUEUEING_WARNING_AT


# -- actions ---------------------------------------------------------------------------------
# Plain slotted dataclasses, as in lease_policy.py: a few are made for every call.


@dataclass(slots=True)
class Follow:
    """Subscribe to the gcs's word about the actor, then ask it for the actor's state
    (reported with ``actor_info``)."""

    actor: ActorState


@dataclass(slots=True)
class Connect:
    """Connect to the instance ``info`` describes; report ``connected`` or ``connect_failed``."""

    actor: ActorState
    info: ActorInfo


@dataclass(slots=True)
class Watch:
    """Report the closing of ``conn`` with ``connection_lost`` (at once, if it is closed
    already), then ``pump`` the actor: calls go out only once a break would be seen."""

    actor: ActorState
    conn: Any


@dataclass(slots=True)
class ResolveArgs:
    """Wait for ``task``'s ref arguments; report ``args_ready`` once all are here."""

    actor: ActorState
    task: PendingTask


@dataclass(slots=True)
class Send:
    """Send ``task`` over ``actor.conn``; report the reply with ``replied``."""

    actor: ActorState
    task: PendingTask


@dataclass(slots=True)
class Settle:
    """``task`` ran: settle it through the task manager; hand a retry back with ``retry``."""

    actor: ActorState
    task: PendingTask
    result: TaskResult


@dataclass(slots=True)
class Fail:
    """Fail ``task`` (not run, or not known to have run) with ``error``."""

    task: PendingTask
    error: BaseException


@dataclass(slots=True)
class FailWithArgument:
    """Fail ``task``, unrun, with the error its argument holds (``blob``)."""

    task: PendingTask
    blob: bytes


@dataclass(slots=True)
class ArmCheck:
    """Call ``check(actor)`` when the clock reaches ``at``."""

    actor: ActorState
    at: float


@dataclass(slots=True)
class AskGcs:
    """Ask the gcs for the actor's state; report it with ``actor_info(checked=True)``."""

    actor: ActorState


@dataclass(slots=True)
class Warn:
    """Warn the user here (the gcs's reason a pending actor cannot be placed yet)."""

    message: str


@dataclass(slots=True)
class WarnExcessQueueing:
    """Tell the job's driver that calls pile up (Ray's ``excess_queueing_warning``)."""

    message: str


@dataclass(slots=True)
class ActorDead:
    """The actor is dead for good (its owner's handles learn it)."""

    actor_id: ActorID


Action = (
    Follow
    | Connect
    | Watch
    | ResolveArgs
    | Send
    | Settle
    | Fail
    | FailWithArgument
    | ArmCheck
    | AskGcs
    | Warn
    | WarnExcessQueueing
    | ActorDead
)


class ActorCallPolicy:
    """The actor submitter's decisions. Every event returns the actions to carry out, in
    order; ``now`` is the clock check deadlines are read from (the shell's timers use it)."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self.actors: dict[ActorID, ActorState] = {}

    def track(self, actor_id: ActorID) -> tuple[ActorState, list[Action]]:
        """The actor's state, followed from now on if it was not yet."""
        actor = self.actors.get(actor_id)
        if actor is not None:
            return actor, []
        actor = self.actors[actor_id] = ActorState(actor_id)
        return actor, [Follow(actor)]

    # -- calls -------------------------------------------------------------------------------
    def submit(self, task: PendingTask) -> list[Action]:
        """A call to ``task.spec.actor_id``: queue it behind the calls before it."""
        actor_id = task.spec.actor_id
        assert actor_id is not None
        actor, actions = self.track(actor_id)
        info = actor.info
        if info is not None and info.state == "DEAD":
            actions.append(Fail(task, death_error(actor_id, info)))
            return actions
        limit = info.max_pending_calls if info is not None else 0
        # (The owner's call that ends an unreachable actor is never refused: it would live on.)
        pending = len(actor.queue) + len(actor.in_flight)
        if limit > 0 and pending >= limit and task.spec.method != TERMINATE_METHOD:
            error = PendingCallsLimitExceeded(
                f"the actor {actor_id.hex()} already has {limit} calls pending (max_pending_calls)"
            )
            actions.append(Fail(task, error))
            return actions
        actor.queue.append(task)
        task.state = "queued"
        pending = len(actor.queue) + len(actor.in_flight)
        if pending > actor.warn_pending_at:
            actions.append(self._excess_queueing(actor, pending))
        if task.arg_refs and not task.resolved:
            actor.awaiting_args.add(task.task_id)
            actions += self.pump(actor)
            # Last: its arguments may all be here, and report ready before this returns.
            actions.append(ResolveArgs(actor, task))
            return actions
        actions += self.pump(actor)
        return actions

    def send_now(self, task: PendingTask, usable: Callable[[Any], bool]) -> Send | None:
        """``task`` (its arguments resolved) comes from a thread that may send it itself:
        to an actor alive and connected over a ``usable`` connection, with no call queued
        or in flight (so it keeps its place). None: nothing changed, ``submit`` it."""
        actor = self.actors.get(task.spec.actor_id)  # type: ignore[arg-type]
        if actor is None or actor.queue or actor.in_flight or actor.conn is None:
            return None
        if actor.info is None or actor.info.state != "ALIVE" or not usable(actor.conn):
            return None
        task.state = "running"
        actor.in_flight[task.task_id] = task
        return Send(actor, task)

    def _excess_queueing(self, actor: ActorState, pending: int) -> WarnExcessQueueing:
        name = actor.info.class_name if actor.info is not None else actor.actor_id.hex()
        text = (
            f"Warning: More than {actor.warn_pending_at} tasks are pending submission to actor "
            f"{name} ({pending} now). To reduce memory use, wait for these calls to finish "
            "before submitting more."
        )
        actor.warn_pending_at *= 2
        return WarnExcessQueueing(text)

    def args_ready(self, actor: ActorState, task: PendingTask, failed_arg: bytes | None) -> list[Action]:
        """Every ref argument of ``task`` is here (``failed_arg``: the first that holds an
        error, which fails the call when its turn comes)."""
        actor.awaiting_args.discard(task.task_id)
        if failed_arg is not None and task.state != "done":
            actor.failed_args[task.task_id] = failed_arg
        return self.pump(actor)

    def pump(self, actor: ActorState) -> list[Action]:
        """Send queued calls in order while the actor is alive and connected (connecting
        first if need be), up to the first whose arguments are not ready."""
        info = actor.info
        if info is None or info.state != "ALIVE":
            return []
        if actor.conn is None:
            if actor.connecting:
                return []
            actor.connecting = True
            return [Connect(actor, info)]
        actions: list[Action] = []
        queue = actor.queue
        while queue:
            task = queue[0]
            if task.arg_refs and task.task_id in actor.awaiting_args:
                break  # later calls wait behind it
            queue.popleft()
            failed = actor.failed_args.pop(task.task_id, None) if actor.failed_args else None
            if task.state == "done":
                continue
            if failed is not None:
                actions.append(FailWithArgument(task, failed))
                continue
            task.state = "running"
            actor.in_flight[task.task_id] = task
            actions.append(Send(actor, task))
        return actions

    def replied(self, actor: ActorState, task: PendingTask, result: TaskResult | None) -> list[Action]:
        """The actor answered ``task`` (``result``), or the send failed (None: the
        connection broke, and ``connection_lost`` decides)."""
        if actor.in_flight.pop(task.task_id, None) is None:
            return []  # already cut off by a broken connection
        if result is None:
            actor.interrupted.append(task)
            return []
        return [Settle(actor, task, result)]

    def retry(self, actor: ActorState, task: PendingTask, await_args: bool) -> list[Action]:
        """The task manager retries ``task``: it goes first, so later calls wait behind it.
        ``await_args``: the store lost arguments of it, which the shell has made again and
        resolved afresh (``ResolveArgs`` is then not needed: it reports ``args_ready``)."""
        if actor.info is not None and actor.info.state == "DEAD":
            return [Fail(task, death_error(actor.actor_id, actor.info))]  # a late reply's retry
        actor.queue.appendleft(task)
        if await_args:
            actor.awaiting_args.add(task.task_id)
            return []
        return self.pump(actor)

    # -- connections -------------------------------------------------------------------------
    def connected(self, actor: ActorState, info: ActorInfo, conn: Any) -> list[Action]:
        """The instance ``info`` described is reachable over ``conn``."""
        actor.connecting = False
        if actor.info is not info:
            return self.pump(actor)  # the state moved on while connecting: start over
        actor.conn = conn
        actor.connected_generation = info.num_restarts
        return [Watch(actor, conn)]

    def connect_failed(self, actor: ActorState) -> list[Action]:
        actor.connecting = False
        return [ArmCheck(actor, self._now() + CHECK_AFTER_S)]

    def connection_lost(self, actor: ActorState, conn: Any, shutting_down: bool) -> list[Action]:
        """``conn`` broke: what was in flight on it may or may not have run."""
        current = actor.conn is conn
        if current:
            actor.conn = None
        actor.interrupted.extend(actor.in_flight.values())
        actor.in_flight.clear()
        if shutting_down:
            return []
        info = actor.info
        if info is not None and info.state == "DEAD":
            return self._fail_in_flight(actor)  # what it answered before closing has settled
        if not current and info is not None and info.num_restarts > actor.connected_generation:
            # The gcs's word came first: this is an earlier instance's connection, and the
            # actor has restarted since. Its calls were cut off by that restart.
            return self._settle_interrupted(actor, restarted=True) + self.pump(actor)
        return [ArmCheck(actor, self._now() + CHECK_AFTER_S)]

    def check(self, actor: ActorState) -> list[Action]:
        """A check timer fired: ask the gcs, unless connected again meanwhile."""
        if actor.info is not None and actor.info.state == "DEAD":
            return self._fail_in_flight(actor)  # its connection never closed
        if actor.conn is None:
            return [AskGcs(actor)]
        if actor.interrupted:  # cut off on an earlier instance's connection
            return self._settle_interrupted(actor, restarted=True) + self.pump(actor)
        return []

    # -- the gcs's word ----------------------------------------------------------------------
    def actor_info(self, info: ActorInfo, checked: bool = False) -> list[Action]:
        """The gcs published (or, ``checked``, answered) the actor's state."""
        actor, actions = self.track(info.actor_id)
        previous = actor.info
        if previous is not None and _older(info, previous):
            return actions
        actor.info = info
        if info.state == "PENDING" and info.death_cause and not actor.warned:
            actor.warned = True
            actions.append(Warn(info.death_cause))
        if info.state == "DEAD":
            actions.append(ActorDead(info.actor_id))
            if actor.conn is not None and actor.in_flight:
                # Their replies may be on the way, ahead of the connection's close: they
                # settle when that closes, or fail at the check if it never does.
                actions += self._settle_interrupted(actor, restarted=False)
                actions.append(ArmCheck(actor, self._now() + CHECK_AFTER_S))
            else:
                actions += self._fail_in_flight(actor)
            while actor.queue:
                actions.append(Fail(actor.queue.popleft(), death_error(actor.actor_id, info)))
            actor.failed_args.clear()
            return actions
        restarted = info.num_restarts > actor.connected_generation >= 0
        if info.state == "RESTARTING" or restarted:
            actions += self._settle_interrupted(actor, restarted=True)
            if actor.conn is not None and actor.connected_generation != info.num_restarts:
                actor.conn = None
        elif checked and actor.interrupted and info.state == "ALIVE":
            # Alive and not restarted, yet our connection broke: the calls may have run.
            actions += self._settle_interrupted(actor, restarted=True)
        actions += self.pump(actor)
        return actions

    def _fail_in_flight(self, actor: ActorState) -> list[Action]:
        """The actor is dead: the calls still in flight will never be answered."""
        actor.interrupted.extend(actor.in_flight.values())
        actor.in_flight.clear()
        return self._settle_interrupted(actor, restarted=False)

    def _settle_interrupted(self, actor: ActorState, restarted: bool) -> list[Action]:
        """The verdict on the calls cut off: resent (to the front, in their order) if the
        actor restarted and they have retries left, else failed."""
        interrupted, actor.interrupted = actor.interrupted, []
        actions: list[Action] = []
        retry = []
        for task in interrupted:
            if task.state == "done":
                continue
            if restarted and task.retries_left != 0:
                task.next_attempt()
                task.state = "queued"
                retry.append(task)
            elif restarted:
                error = ActorUnavailableError(
                    error_msg=f"The actor {actor.actor_id.hex()} is unavailable: its worker died "
                    "while running this call and it is restarting. The task may or may not have been "
                    "executed on the actor; set max_task_retries to retry such calls.",
                    actor_id=actor.actor_id.hex(),
                )
                actions.append(Fail(task, error))
            else:
                actions.append(Fail(task, death_error(actor.actor_id, actor.info)))
        actor.queue.extendleft(reversed(retry))
        return actions

    # -- what handles ask --------------------------------------------------------------------
    def pending_calls(self, actor_id: ActorID) -> int:
        actor = self.actors.get(actor_id)
        return 0 if actor is None else len(actor.queue) + len(actor.in_flight)

    def is_created(self, actor_id: ActorID) -> bool:
        """Whether the actor's constructor has run (it is or was alive), as known here."""
        actor = self.actors.get(actor_id)
        info = actor.info if actor is not None else None
        return info is not None and (info.state in ("ALIVE", "RESTARTING") or info.num_restarts > 0)

    def death_error(self, actor_id: ActorID) -> RayActorError:
        actor = self.actors.get(actor_id)
        return death_error(actor_id, actor.info if actor is not None else None)


def death_error(actor_id: ActorID, info: ActorInfo | None) -> RayActorError:
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


def _older(new: ActorInfo, old: ActorInfo) -> bool:
    """Publications can race a direct reply: never step back to an earlier state."""
    order = {"PENDING": 0, "ALIVE": 1, "RESTARTING": 1, "DEAD": 3}
    if old.state == "DEAD":
        return True
    if new.num_restarts != old.num_restarts:
        return new.num_restarts < old.num_restarts
    if old.state == "RESTARTING" and new.state == "ALIVE":
        return False
    return order[new.state] < order[old.state]
