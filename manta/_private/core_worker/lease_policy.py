"""Which leased worker runs which normal task: the submitter's decisions, without I/O.

Tasks are grouped by *scheduling class* (resource shape, runtime environment, strategy);
each class has a queue, the leases it holds and the lease requests it has outstanding at
node daemons. A granted lease is a worker the owner may push tasks to until it returns
the lease; the owner reuses it for every queued task of the class, and keeps it for a
short linger when the queue runs dry so a submit-then-get loop does not pay a lease
round trip per task.

``LeasePolicy`` is a state machine: the submitter (the shell, on the I/O thread) reports
events (a task queued, a lease granted, a reply, a dead worker, a timer) and carries out
the actions each event returns, in order. No sockets, no asyncio; time comes from the
injected ``now``. Connections live on leases as opaque handles only the shell uses.
Settling a task (results, retries) is the task manager's business: the policy only says
when (``Settle``, ``Fail``).
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from manta._private.common.config import Config
from manta._private.common.ids import LeaseID, WorkerID
from manta._private.common.runtime_env import runtime_env_key
from manta._private.core_worker.task_manager import PendingTask
from manta._private.rpc.messages import Address, TaskResult
from manta.exceptions import TaskCancelledError, TaskPlacementGroupRemoved, TaskUnschedulableError


@dataclass(eq=False, slots=True)
class Lease:
    lease_id: LeaseID
    worker_id: WorkerID
    address: Address
    instance_ids: dict[str, list[str]]
    # The node daemon that granted it and, once connected, the worker: opaque handles
    # for the shell. A lease takes tasks only once ``conn`` is set.
    node: Any
    conn: Any = None
    in_flight: dict[Any, PendingTask] = field(default_factory=dict)
    # Deadline of the linger timer (the clock's time) while one is armed: set only while
    # nothing is in flight; the lease goes back then unless work arrived.
    linger_at: float | None = None
    dead: bool = False
    # The worker said it will exit (max_calls): push nothing more, return it once empty.
    draining: bool = False
    # The worker sent pipelined tasks back (its task ran long): one task at a time
    # until it is idle again.
    no_pipeline: bool = False


@dataclass(eq=False, slots=True)
class SchedulingClass:
    key: Hashable
    resources: dict[str, float]
    runtime_env_key: str
    strategy: Any
    queue: deque[PendingTask] = field(default_factory=deque)
    leases: list[Lease] = field(default_factory=list)
    # Outstanding lease requests by nonce, oldest first (a dict as an ordered set: the
    # newest are the ones cancelled when the queue shrinks).
    requests: dict[int, None] = field(default_factory=dict)
    # Requests we asked the node to drop; they end with LeaseCancelled (or a late grant).
    cancelling: set[int] = field(default_factory=set)
    warned_infeasible: bool = False
    # LeasePolicy.depth_changes when this class was last pumped.
    pumped_at: int = -1


# -- actions ---------------------------------------------------------------------------------
# Plain slotted dataclasses rather than frozen ones: a frozen dataclass's __init__ costs
# about four times as much, and a few actions are made for every task.


@dataclass(slots=True)
class Push:
    """Send ``task`` to the worker of ``lease``; report its reply with ``replied``."""

    cls: SchedulingClass
    lease: Lease
    task: PendingTask


@dataclass(slots=True)
class RequestWorker:
    """Ask the node daemons for a lease under ``nonce``; report how it ended with
    ``request_ended`` and then ``granted`` / ``refused`` / ``request_cancelled`` /
    ``request_failed``."""

    cls: SchedulingClass
    nonce: int


@dataclass(slots=True)
class CancelRequest:
    """Ask the node daemon holding request ``nonce`` to drop it."""

    cls: SchedulingClass
    nonce: int


@dataclass(slots=True)
class Connect:
    """Connect to the worker of a granted lease; report ``connected`` or ``connect_failed``."""

    cls: SchedulingClass
    lease: Lease


@dataclass(slots=True)
class ReturnWorker:
    """Give the lease back to its node daemon (``kill``: the worker is broken or exiting)."""

    lease: Lease
    kill: bool


@dataclass(slots=True)
class ArmLinger:
    """Call ``linger_over(cls, lease, at)`` when the clock reaches ``at``."""

    cls: SchedulingClass
    lease: Lease
    at: float


@dataclass(slots=True)
class CancelLinger:
    lease: Lease


@dataclass(slots=True)
class Settle:
    """``task`` ran: settle it through the task manager, then ``pump`` its class."""

    cls: SchedulingClass
    task: PendingTask
    result: TaskResult


@dataclass(slots=True)
class Fail:
    """Fail ``task`` (not run, or not to be run) with ``error``."""

    task: PendingTask
    error: BaseException


@dataclass(slots=True)
class Interrupt:
    """Cancel ``task`` where it runs (``force``: kill its worker if it runs there now)."""

    lease: Lease
    task: PendingTask
    force: bool
    recursive: bool


@dataclass(slots=True)
class Warn:
    message: str


Action = (
    Push
    | RequestWorker
    | CancelRequest
    | Connect
    | ReturnWorker
    | ArmLinger
    | CancelLinger
    | Settle
    | Fail
    | Interrupt
    | Warn
)


def scheduling_key(
    resources: dict[str, float], runtime_env: dict[str, Any] | None, strategy: Any
) -> Hashable:
    """Tasks with equal keys share a scheduling class (and so leases): the same resources,
    runtime environment and scheduling strategy."""
    if strategy is not None and not isinstance(strategy, str):
        strategy = json.dumps(strategy, sort_keys=True, default=str)
    return (tuple(sorted(resources.items())), runtime_env_key(runtime_env), strategy)


def pipeline_depth(run_time: float | None, config: Config) -> int:
    """How many tasks of a function whose runs took ``run_time`` on average a worker may
    hold: one for a function never run or slower than ``pipeline_below_s``; for a faster
    one, as many as fit in ``pipeline_below_s`` of expected work (up to
    ``max_tasks_in_flight_per_worker``), so a worker's queue is always short in time while
    no-op-sized tasks keep it busy through the round trips."""
    if run_time is None or run_time >= config.pipeline_below_s:
        return 1
    fit = int(config.pipeline_below_s / max(run_time, 1e-9))
    return max(1, min(config.max_tasks_in_flight_per_worker, fit))


class LeasePolicy:
    """The submitter's decisions. Every event returns the actions to carry out, in order;
    ``now`` is the clock linger deadlines are read from (the shell's timers use the same)."""

    def __init__(self, config: Config, now: Callable[[], float]) -> None:
        self._config = config
        self._now = now
        self.classes: dict[Hashable, SchedulingClass] = {}
        self._by_nonce: dict[int, SchedulingClass] = {}
        self._nonces = itertools.count(1)
        # Moving average of each function's run time, to decide whether to pipeline it.
        self.run_time: dict[bytes, float] = {}
        self._depth: dict[bytes, int] = {}  # pipeline_depth of each run_time, kept with it
        self.depth_changes = 0

    # -- tasks -------------------------------------------------------------------------------
    def enqueue(self, task: PendingTask) -> list[Action]:
        """``task``'s arguments are resolved: queue it in its class."""
        cls = self.classes.get(task.sched_key)
        if cls is None:
            spec = task.spec
            cls = SchedulingClass(
                task.sched_key, spec.resources, runtime_env_key(spec.runtime_env), task.strategy
            )
            self.classes[task.sched_key] = cls
        task.state = "queued"
        queue = cls.queue
        if queue and cls.pumped_at == self.depth_changes:
            # The last pump left tasks queued, so no lease had room for the first, and
            # every event that makes room in this class pumps it again (a function's depth,
            # shared by classes, counts its changes): only the requests may change.
            queue.append(task)
            actions: list[Action] = []
            self._request_workers(cls, actions)
            return actions
        queue.append(task)
        return self.pump(cls)

    def push_now(self, task: PendingTask, usable: Callable[[Any], bool]) -> Push | None:
        """``task`` (its arguments resolved) comes from a thread that may push it itself:
        to an idle lease of its class whose connection is ``usable``, when no task of the
        class waits (they go first). None: nothing changed, ``enqueue`` it. The lease's
        armed linger is left to fire: its deadline no longer matches, so it does nothing."""
        cls = self.classes.get(task.sched_key)
        if cls is None or cls.queue:
            return None
        for lease in cls.leases:
            if not lease.in_flight and lease.conn is not None and not lease.draining and usable(lease.conn):
                lease.linger_at = None
                task.state = "running"
                task.lease = lease
                lease.in_flight[task.task_id] = task
                return Push(cls, lease, task)
        return None

    def cancel(self, task: PendingTask, force: bool, recursive: bool) -> list[Action]:
        """A task not pushed yet fails at once; a pushed one is interrupted where it runs."""
        if task.state == "done":
            return []
        task.cancelled = True
        task.force_cancel = force
        if task.state in ("pending", "queued"):
            cls = self.classes.get(task.sched_key)
            if cls is not None and task in cls.queue:
                cls.queue.remove(task)
                cls.pumped_at = -1  # a new first task may fit where the last did not
            return [Fail(task, TaskCancelledError(task.task_id.hex()))]
        lease: Lease | None = task.lease
        if lease is None or lease.dead or lease.conn is None:
            return []
        return [Interrupt(lease, task, force, recursive)]

    def replied(
        self, cls: SchedulingClass, lease: Lease, task: PendingTask, result: TaskResult
    ) -> list[Action]:
        """The worker answered a push: settle the task, or queue it again if it never ran."""
        lease.in_flight.pop(task.task_id, None)
        actions: list[Action] = []
        if result.worker_exiting:
            lease.draining = True
            if not lease.in_flight:
                actions += self._drop(cls, lease, kill=True)
        if result.rejected:
            # It never ran (the worker is exiting, or sent back a pipelined task): not a failure.
            if not result.worker_exiting and lease.in_flight:
                lease.no_pipeline = True
            task.lease = None
            if task.cancelled:  # cancelled while it waited there: it never runs
                actions.append(Fail(task, TaskCancelledError(task.task_id.hex())))
            else:
                task.state = "queued"
                cls.queue.appendleft(task)
            actions += self.pump(cls)
            return actions
        fid = task.spec.function_id
        previous = self.run_time.get(fid)
        run_time = result.exec_s if previous is None else 0.7 * previous + 0.3 * result.exec_s
        self.run_time[fid] = run_time
        depth = pipeline_depth(run_time, self._config)
        if self._depth.get(fid) != depth:
            self._depth[fid] = depth
            self.depth_changes += 1
        actions.append(Settle(cls, task, result))
        return actions

    def push_failed(self, lease: Lease, task: PendingTask) -> None:
        """The push got no reply (the worker is unreachable). Bookkeeping only: the shell
        reports ``lease_lost`` next and settles the task as a worker death."""
        lease.in_flight.pop(task.task_id, None)

    # -- leases ------------------------------------------------------------------------------
    def pump(self, cls: SchedulingClass) -> list[Action]:
        """Push queued tasks to leases with room, keep the right number of lease requests
        outstanding, and start the linger of every idle lease."""
        actions: list[Action] = []
        queue = cls.queue
        cls.pumped_at = self.depth_changes
        while queue:
            # The connected lease with the fewest tasks in flight that has room for the
            # next task (inline: this loop runs for every task).
            lease = None
            best = self._capacity(queue[0])
            for candidate in cls.leases:
                held = len(candidate.in_flight)
                if (
                    held < best
                    and (held == 0 or not candidate.no_pipeline)
                    and candidate.conn is not None
                    and not candidate.draining
                ):
                    lease, best = candidate, held
            if lease is None:
                break
            task = queue.popleft()
            if lease.linger_at is not None:
                lease.linger_at = None
                actions.append(CancelLinger(lease))
            task.state = "running"
            task.lease = lease
            lease.in_flight[task.task_id] = task
            actions.append(Push(cls, lease, task))
        self._request_workers(cls, actions)
        if queue:
            return actions  # then every lease that can take a task holds one: none lingers
        for lease in cls.leases:
            if (
                not lease.in_flight
                and lease.linger_at is None
                and lease.conn is not None
                and not lease.draining
            ):
                lease.linger_at = self._now() + self._config.lease_linger_s
                actions.append(ArmLinger(cls, lease, lease.linger_at))
        return actions

    def _request_workers(self, cls: SchedulingClass, actions: list[Action]) -> None:
        """Keep as many lease requests outstanding as tasks wait, up to the limit."""
        wanted = min(len(cls.queue), self._config.max_pending_leases_per_class)
        outstanding = len(cls.requests) - len(cls.cancelling)  # cancelling ⊆ requests
        if wanted > outstanding:
            for _ in range(wanted - outstanding):
                nonce = next(self._nonces)
                cls.requests[nonce] = None
                self._by_nonce[nonce] = cls
                actions.append(RequestWorker(cls, nonce))
        elif wanted < outstanding:
            active = [nonce for nonce in cls.requests if nonce not in cls.cancelling]
            for nonce in active[wanted:]:
                cls.cancelling.add(nonce)
                actions.append(CancelRequest(cls, nonce))

    def _capacity(self, task: PendingTask) -> int:
        """How many tasks a worker may hold when ``task`` is queued on it."""
        spec = task.spec
        if spec.max_calls:
            return 1  # its worker may exit after it
        return self._depth.get(spec.function_id, 1)

    def request_ended(self, cls: SchedulingClass, nonce: int) -> None:
        """Request ``nonce`` has its answer (or none will come): forget it. The answer, if
        any, is reported next."""
        cls.requests.pop(nonce, None)
        cls.cancelling.discard(nonce)
        self._by_nonce.pop(nonce, None)

    def granted(self, cls: SchedulingClass, lease: Lease) -> list[Action]:
        """A request was granted (after ``request_ended``): connect to the worker."""
        cls.leases.append(lease)
        return [Connect(cls, lease)]

    def connected(self, cls: SchedulingClass, lease: Lease, conn: Any) -> list[Action]:
        """The worker is reachable over ``conn``: the lease takes tasks from now on."""
        lease.conn = conn
        return self.pump(cls)

    def connect_failed(self, cls: SchedulingClass, lease: Lease) -> list[Action]:
        return self._drop(cls, lease, kill=True) + self.pump(cls)

    def lease_lost(self, cls: SchedulingClass, lease: Lease) -> list[Action]:
        """Its worker died or its connection broke: give it back for the node to kill."""
        return self._drop(cls, lease, kill=True)

    def refused(self, cls: SchedulingClass, error: str, reason: str) -> list[Action]:
        """The node can never grant this class (a removed placement group, an impossible
        strategy): nothing queued in it can run."""
        kind = TaskPlacementGroupRemoved if error == "TaskPlacementGroupRemoved" else TaskUnschedulableError
        return self._fail_queued(cls, kind(reason))

    def request_cancelled(self, cls: SchedulingClass) -> list[Action]:
        """The node dropped a request (we asked, or it moved on): ask again if still needed."""
        return self.pump(cls)

    def request_failed(self, cls: SchedulingClass, error: BaseException) -> list[Action]:
        """The node daemon is gone: nothing queued here can run."""
        return self._fail_queued(cls, error)

    def infeasible(self, nonce: int, message: str) -> list[Action]:
        """A request waits for resources no node has: warn once per class."""
        cls = self._by_nonce.get(nonce)
        if cls is None or cls.warned_infeasible:
            return []
        cls.warned_infeasible = True
        return [Warn(message)]

    def linger_over(self, cls: SchedulingClass, lease: Lease, at: float) -> list[Action]:
        """The linger timer armed for ``at`` fired. The deadline identifies the timer, so
        a stale one (work arrived since) changes nothing; comparing it with the clock
        instead would misjudge timers that fire within their resolution of it."""
        if lease.linger_at != at:
            return []
        lease.linger_at = None
        if lease.in_flight or cls.queue:
            return []
        return self._drop(cls, lease, kill=False)

    def _drop(self, cls: SchedulingClass, lease: Lease, kill: bool) -> list[Action]:
        if lease in cls.leases:
            cls.leases.remove(lease)
        actions: list[Action] = []
        if lease.linger_at is not None:
            lease.linger_at = None
            actions.append(CancelLinger(lease))
        if not lease.dead:
            lease.dead = True
            actions.append(ReturnWorker(lease, kill))
        return actions

    def _fail_queued(self, cls: SchedulingClass, error: BaseException) -> list[Action]:
        actions: list[Action] = [Fail(task, error) for task in cls.queue]
        cls.queue.clear()
        return actions
