"""The submitter's lease decisions as a pure state machine: events in, actions out, a fake clock."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from manta._private.common.clock import FakeClock
from manta._private.common.config import Config
from manta._private.common.ids import JobID, LeaseID, NodeID, TaskID, WorkerID
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
    pipeline_depth,
)
from manta._private.core_worker.task_manager import PendingTask
from manta._private.rpc.messages import Address, TaskResult, TaskSpec
from manta.exceptions import TaskCancelledError, TaskPlacementGroupRemoved, TaskUnschedulableError

JOB = JobID.from_int(1)
DRIVER_TASK = TaskID.for_driver(JOB)
OWNER = Address(NodeID.from_random(), WorkerID.from_random(), "127.0.0.1", 1, "", 2)
LINGER_S = 0.05
MAX_REQUESTS = 2
MAX_IN_FLIGHT = 3
FAST_S, SLOW_S = 0.0001, 1.0  # either side of pipeline_below_s


def test_a_worker_is_given_at_most_pipeline_below_s_of_expected_work() -> None:
    config = Config(max_tasks_in_flight_per_worker=16, pipeline_below_s=0.002)
    assert pipeline_depth(None, config) == 1  # never run: its length is unknown
    assert pipeline_depth(0.002, config) == pipeline_depth(1.0, config) == 1
    assert pipeline_depth(0.0015, config) == 1  # two would queue 3 ms
    assert pipeline_depth(0.0005, config) == 4
    assert pipeline_depth(0.00002, config) == pipeline_depth(0.0, config) == 16


@given(st.floats(0, 10), st.integers(1, 64), st.floats(1e-4, 1))
def test_pipelining_depth_bounds(run_time: float, most: int, below: float) -> None:
    config = Config(max_tasks_in_flight_per_worker=most, pipeline_below_s=below)
    depth = pipeline_depth(run_time, config)
    assert 1 <= depth <= most
    assert depth == 1 or depth * run_time <= below


def make_task(key: str = "k", fid: bytes = b"f", max_calls: int = 0, retries: int = 0) -> PendingTask:
    task_id = TaskID.for_normal_task(JOB)
    spec = TaskSpec(
        task_id, JOB, DRIVER_TASK, "f", fid, "mod.f", b"", [], 1, OWNER, 0, {"CPU": 1.0}, None, 0, max_calls
    )
    return PendingTask(spec, [], [], [], retries, False, sched_key=key)


def result(exec_s: float = SLOW_S, *, rejected: bool = False, worker_exiting: bool = False) -> TaskResult:
    return TaskResult([], False, exec_s, worker_exiting, rejected)


def of(kind: type, actions: list[Action]) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


class World:
    """The policy inside a fake shell that carries out its actions as the submitter does,
    keeping requests, connections and timers as plain data (and checking each action)."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.config = Config(
            lease_linger_s=LINGER_S,
            max_pending_leases_per_class=MAX_REQUESTS,
            max_tasks_in_flight_per_worker=MAX_IN_FLIGHT,
            pipeline_below_s=0.002,
        )
        self.policy = LeasePolicy(self.config, self.clock.monotonic)
        self.tasks: list[PendingTask] = []
        # Lease requests outstanding at "the node", and those we asked it to drop.
        self.requests: dict[int, SchedulingClass] = {}
        self.cancel_asked: set[int] = set()
        self.connecting: list[tuple[SchedulingClass, Lease]] = []
        self.timers: dict[Lease, tuple[SchedulingClass, float]] = {}
        # Linger timers push_now left armed (the shell cancels one when it arms the next).
        self.stale: dict[Lease, tuple[SchedulingClass, float]] = {}
        self.returned: dict[Lease, bool] = {}
        self.outcomes: dict[TaskID, list[Any]] = {}
        self.interrupted: list[Interrupt] = []
        self.warnings: list[str] = []

    # -- the shell ---------------------------------------------------------------------------
    def run(self, actions: list[Action]) -> list[Action]:
        for action in actions:
            if isinstance(action, Push):
                lease = action.lease
                assert lease.conn is not None and not lease.dead and not lease.draining
                assert lease in action.cls.leases and lease not in self.timers
                # The pump pushes several before we see the first: what was in flight when
                # this one was pushed is what came before it.
                before = list(lease.in_flight).index(action.task.task_id)
                assert before < (1 if lease.no_pipeline else self.capacity(action.task)), "over capacity"
            elif isinstance(action, Settle):
                self.settle(action.task, "ran")
                self.pump(action.cls)
            elif isinstance(action, Fail):
                self.settle(action.task, action.error)
            elif isinstance(action, RequestWorker):
                self.requests[action.nonce] = action.cls
            elif isinstance(action, CancelRequest):
                assert action.nonce in self.requests and action.nonce not in self.cancel_asked
                self.cancel_asked.add(action.nonce)
            elif isinstance(action, Connect):
                self.connecting.append((action.cls, action.lease))
            elif isinstance(action, ReturnWorker):
                assert action.lease not in self.returned, "a lease returned twice"
                self.returned[action.lease] = action.kill
            elif isinstance(action, ArmLinger):
                assert action.lease not in self.timers
                self.stale.pop(action.lease, None)
                self.timers[action.lease] = (action.cls, action.at)
            elif isinstance(action, CancelLinger):
                del self.timers[action.lease]
            elif isinstance(action, Interrupt):
                self.interrupted.append(action)
            elif isinstance(action, Warn):
                self.warnings.append(action.message)
        return actions

    def capacity(self, task: PendingTask) -> int:
        if task.spec.max_calls:
            return 1
        return pipeline_depth(self.policy.run_time.get(task.spec.function_id), self.config)

    def settle(self, task: PendingTask, outcome: Any) -> None:
        task.state, task.lease = "done", None
        self.outcomes.setdefault(task.task_id, []).append(outcome)

    def pump(self, cls: SchedulingClass) -> list[Action]:
        return self.after_pump(cls, self.policy.pump(cls))

    def after_pump(self, cls: SchedulingClass, actions: list[Action]) -> list[Action]:
        self.run(actions)
        active = [n for n, c in self.requests.items() if c is cls and n not in self.cancel_asked]
        assert len(active) == min(len(cls.queue), MAX_REQUESTS), "wrong number of lease requests"
        return actions

    # -- events, reported as the submitter does ------------------------------------------------
    def submit(self, key: str = "k", fid: bytes = b"f", max_calls: int = 0, retries: int = 0) -> PendingTask:
        task = make_task(key, fid, max_calls, retries)
        self.tasks.append(task)
        actions = self.policy.enqueue(task)
        self.after_pump(self.policy.classes[key], actions)
        return task

    def submit_now(self, key: str = "k", fid: bytes = b"f", usable: bool = True) -> PendingTask:
        """Submitted from a thread that pushes it itself where it can (push_now), else
        queued as usual: as the submitter does."""
        task = make_task(key, fid)
        self.tasks.append(task)
        push = self.policy.push_now(task, lambda conn: usable)
        if push is None:
            actions = self.policy.enqueue(task)
            self.after_pump(self.policy.classes[key], actions)
            return task
        lease = push.lease
        assert lease.linger_at is None and lease.in_flight == {task.task_id: task}
        if lease in self.timers:
            self.stale[lease] = self.timers.pop(lease)
        self.run([push])
        return task

    def end_request(self, nonce: int) -> SchedulingClass:
        cls = self.requests.pop(nonce)
        self.cancel_asked.discard(nonce)
        self.policy.request_ended(cls, nonce)
        return cls

    def grant(self, nonce: int | None = None, connect: bool = True) -> Lease:
        cls = self.end_request(min(self.requests) if nonce is None else nonce)
        lease = Lease(LeaseID.from_random(), WorkerID.from_random(), OWNER, {}, node="node")
        assert self.run(self.policy.granted(cls, lease)) == [Connect(cls, lease)]
        if connect:
            self.connect(lease)
        return lease

    def connect(self, lease: Lease) -> list[Action]:
        cls, _ = next(pair for pair in self.connecting if pair[1] is lease)
        self.connecting.remove((cls, lease))
        return self.after_pump(cls, self.policy.connected(cls, lease, conn="conn"))

    def reply(self, task: PendingTask, res: TaskResult | None = None) -> list[Action]:
        lease = task.lease
        cls = self.policy.classes[task.sched_key]
        return self.run(self.policy.replied(cls, lease, task, res or result()))

    def worker_died(self, lease: Lease) -> None:
        """Every push in flight fails, then each failure is handled as the submitter does:
        the lease goes back, the task is retried or fails."""
        cls = next(c for c in self.policy.classes.values() if lease in c.leases or lease in self.returned)
        lost = list(lease.in_flight.values())
        for task in lost:
            self.policy.push_failed(lease, task)
        self.run(self.policy.lease_lost(cls, lease))
        for task in lost:
            if task.retries_left > 0 and not task.cancelled:
                task.retries_left -= 1
                task.state, task.lease = "pending", None
                self.run(self.policy.enqueue(task))
            else:
                self.settle(task, "died")
            self.pump(cls)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        for lease, (cls, at) in list(self.stale.items()):
            if at <= self.clock.now:
                del self.stale[lease]
                assert self.policy.linger_over(cls, lease, at) == [], "a stale linger acted"
        for lease, (cls, at) in sorted(self.timers.items(), key=lambda item: item[1][1]):
            if at <= self.clock.now and self.timers.get(lease) == (cls, at):
                del self.timers[lease]
                self.run(self.policy.linger_over(cls, lease, at))


# -- scheduling classes and requests -------------------------------------------------------------


def test_tasks_are_queued_per_scheduling_class() -> None:
    w = World()
    a, b = w.submit("a"), w.submit("b")
    assert set(w.policy.classes) == {"a", "b"}
    assert list(w.policy.classes["a"].queue) == [a] and list(w.policy.classes["b"].queue) == [b]
    assert sorted(str(c.key) for c in w.requests.values()) == ["a", "b"]


def test_a_queued_task_runs_on_the_lease_once_connected() -> None:
    w = World()
    task = w.submit()
    lease = w.grant(connect=False)
    assert task.state == "queued"  # not connected yet: nothing to push to
    pushed = of(Push, w.connect(lease))
    assert [p.task for p in pushed] == [task]
    assert task.state == "running" and task.lease is lease and list(lease.in_flight.values()) == [task]


def test_lease_requests_outstanding_are_capped_per_class() -> None:
    w = World()
    for _ in range(5):
        w.submit()
    assert len(w.requests) == MAX_REQUESTS


def test_extra_requests_are_cancelled_newest_first_when_the_queue_shrinks() -> None:
    w = World()
    first, second = w.submit(), w.submit()
    old, new = sorted(w.requests)
    w.run(w.policy.cancel(second, False, False))  # no pump: its request stays for now
    assert w.cancel_asked == set()
    w.grant(old)  # first runs; the queue is empty now
    assert first.state == "running"
    assert w.cancel_asked == {new}


def test_a_cancelled_request_is_asked_again_while_work_is_queued() -> None:
    w = World()
    w.submit()
    (nonce,) = w.requests
    cls = w.end_request(nonce)
    actions = w.after_pump(cls, w.policy.request_cancelled(cls))
    assert len(of(RequestWorker, actions)) == 1


# -- choosing a lease ------------------------------------------------------------------------------


def test_unknown_or_slow_functions_get_a_worker_each() -> None:
    w = World()
    w.submit(), w.submit()
    lease = w.grant()
    assert len(lease.in_flight) == 1
    w.reply(next(iter(lease.in_flight.values())), result(SLOW_S))
    assert len(lease.in_flight) == 1  # the next one, alone


def test_fast_functions_are_pipelined_up_to_the_limit() -> None:
    w = World()
    w.submit()
    lease = w.grant()
    w.reply(next(iter(lease.in_flight.values())), result(FAST_S))  # now known to be fast
    for _ in range(MAX_IN_FLIGHT + 2):
        w.submit()
    assert len(lease.in_flight) == MAX_IN_FLIGHT


def test_a_task_queued_behind_others_goes_at_once_where_room_appeared_unpumped() -> None:
    # A queued task skips the lease scan only while nothing made room unseen: a function
    # found fast in another class, or a first task cancelled, lets the next one go.
    w = World()
    w.submit("a"), w.submit("a")  # unknown: one at a time, the second waits
    lease = w.grant(next(n for n, c in w.requests.items() if c.key == "a"))
    assert len(lease.in_flight) == 1 and len(w.policy.classes["a"].queue) == 1
    w.submit("b")
    other = w.grant(next(n for n, c in w.requests.items() if c.key == "b"))
    w.reply(next(iter(other.in_flight.values())), result(FAST_S))  # class b learns f is fast
    w.submit("a")
    assert len(lease.in_flight) == 3 and not w.policy.classes["a"].queue

    v = World()
    first = v.submit(fid=b"fast")
    v.grant()
    v.reply(first, result(FAST_S))  # f is fast; "slow" is unknown: one at a time
    v.submit(fid=b"slow"), v.submit(fid=b"slow")
    fast = v.submit(fid=b"fast")  # behind the waiting slow one
    queued = v.policy.classes["k"].queue
    v.run(v.policy.cancel(queued[0], force=False, recursive=False))
    assert list(queued) == [fast]
    v.submit(fid=b"fast")  # a fast first task fits beside the running slow one
    assert fast.state == "running"


def test_run_time_is_a_moving_average() -> None:
    w = World()
    w.submit()
    lease = w.grant()
    w.reply(next(iter(lease.in_flight.values())), result(0.001))
    w.submit()
    w.reply(next(iter(lease.in_flight.values())), result(0.011))
    assert w.policy.run_time[b"f"] == pytest.approx(0.7 * 0.001 + 0.3 * 0.011)


def test_max_calls_tasks_are_never_pipelined() -> None:
    w = World()
    w.submit(max_calls=2)
    lease = w.grant()
    w.reply(next(iter(lease.in_flight.values())), result(FAST_S))
    w.submit(max_calls=2)
    w.submit(max_calls=2)
    assert len(lease.in_flight) == 1


def test_the_least_loaded_lease_takes_the_next_task() -> None:
    w = World()
    w.submit(), w.submit()
    one, two = w.grant(), w.grant()
    assert len(one.in_flight) == len(two.in_flight) == 1


# -- replies -----------------------------------------------------------------------------------------


def test_a_rejected_task_goes_back_to_the_front_and_the_lease_stops_pipelining() -> None:
    w = World()
    w.submit()
    lease = w.grant()
    w.reply(next(iter(lease.in_flight.values())), result(FAST_S))
    tasks = [w.submit() for _ in range(MAX_IN_FLIGHT + 1)]
    assert list(lease.in_flight.values()) == tasks[:MAX_IN_FLIGHT]
    w.reply(tasks[1], result(rejected=True))
    assert lease.no_pipeline and tasks[1].state == "queued" and w.outcomes.get(tasks[1].task_id) is None
    assert list(w.policy.classes["k"].queue) == [tasks[1], tasks[3]]
    w.reply(tasks[0])
    w.reply(tasks[2])  # idle again: one at a time from here on
    assert list(lease.in_flight.values()) == [tasks[1]]


def test_a_rejected_task_that_was_cancelled_fails() -> None:
    w = World()
    task = w.submit()
    lease = w.grant()
    assert of(Interrupt, w.policy.cancel(task, False, True)) == [Interrupt(lease, task, False, True)]
    w.reply(task, result(rejected=True))
    (outcome,) = w.outcomes[task.task_id]
    assert isinstance(outcome, TaskCancelledError)


def test_an_exiting_worker_drains_and_is_returned_once_empty() -> None:
    w = World()
    w.submit()
    lease = w.grant()
    w.reply(next(iter(lease.in_flight.values())), result(FAST_S))
    first, second = w.submit(), w.submit()
    w.reply(first, result(worker_exiting=True))
    assert lease.draining and lease not in w.returned
    third = w.submit()
    assert third.state == "queued"  # nothing more for a draining worker
    w.reply(second, result(rejected=True, worker_exiting=True))  # as an exiting worker does
    assert w.returned[lease] is True and lease not in w.policy.classes["k"].leases
    assert list(w.policy.classes["k"].queue) == [second, third]


def test_a_task_rejected_by_an_exiting_worker_runs_elsewhere() -> None:
    w = World()
    task = w.submit()
    lease = w.grant()
    w.reply(task, result(rejected=True, worker_exiting=True))
    assert w.returned[lease] is True and not lease.no_pipeline
    assert task.state == "queued" and len(w.requests) == 1


def test_a_dead_worker_is_returned_for_killing() -> None:
    w = World()
    task = w.submit()
    lease = w.grant()
    w.worker_died(lease)
    assert w.returned == {lease: True} and w.outcomes[task.task_id] == ["died"]
    assert w.policy.lease_lost(w.policy.classes["k"], lease) == []  # once only


def test_an_unreachable_lease_is_returned_and_asked_for_again() -> None:
    w = World()
    w.submit()
    lease = w.grant(connect=False)
    cls, _ = w.connecting.pop()
    actions = w.after_pump(cls, w.policy.connect_failed(cls, lease))
    assert w.returned == {lease: True} and len(of(RequestWorker, actions)) == 1


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ("TaskPlacementGroupRemoved", TaskPlacementGroupRemoved),
        ("TaskUnschedulableError", TaskUnschedulableError),
    ],
)
def test_a_refused_lease_fails_the_queued_tasks_of_the_class(error: str, kind: type) -> None:
    w = World()
    tasks = [w.submit() for _ in range(3)]
    other = w.submit("other")
    cls = w.end_request(min(w.requests))
    w.run(w.policy.refused(cls, error, "no such group"))
    for task in tasks:
        (outcome,) = w.outcomes[task.task_id]
        assert isinstance(outcome, kind) and "no such group" in str(outcome)
    assert other.state == "queued" and not cls.queue


def test_a_failed_lease_request_fails_the_queued_tasks_with_its_error() -> None:
    w = World()
    task = w.submit()
    cls = w.end_request(min(w.requests))
    error = RuntimeError("node gone")
    w.run(w.policy.request_failed(cls, error))
    assert w.outcomes[task.task_id] == [error]


def test_infeasible_classes_are_warned_about_once() -> None:
    w = World()
    w.submit(), w.submit()
    one, two = sorted(w.requests)
    assert w.policy.infeasible(one, "no GPU") == [Warn("no GPU")]
    assert w.policy.infeasible(two, "no GPU") == []
    assert w.policy.infeasible(12345, "unknown") == []


# -- cancelling --------------------------------------------------------------------------------------


def test_cancelling_a_queued_task_fails_it_unrun() -> None:
    w = World()
    task = w.submit()
    (fail,) = w.run(w.policy.cancel(task, False, False))
    assert isinstance(fail, Fail) and isinstance(fail.error, TaskCancelledError)
    assert task.cancelled and not w.policy.classes["k"].queue


def test_cancelling_a_task_that_waits_for_arguments_fails_it() -> None:
    w = World()
    task = make_task()  # state "pending": not queued anywhere yet
    (fail,) = w.policy.cancel(task, True, False)
    assert isinstance(fail, Fail) and task.force_cancel


def test_cancelling_a_running_task_interrupts_it_where_it_runs() -> None:
    w = World()
    task = w.submit()
    lease = w.grant()
    assert w.policy.cancel(task, True, False) == [Interrupt(lease, task, True, False)]
    w.settle(task, "ran")
    assert w.policy.cancel(task, True, False) == []  # done: nothing to do


def test_cancelling_a_task_on_a_dead_lease_does_nothing_more() -> None:
    w = World()
    task = w.submit()
    lease = w.grant()
    w.run(w.policy.lease_lost(w.policy.classes["k"], lease))
    assert w.policy.cancel(task, False, False) == [] and task.cancelled


# -- linger ------------------------------------------------------------------------------------------


def test_an_idle_lease_lingers_then_goes_back() -> None:
    w = World()
    task = w.submit()
    lease = w.grant()
    w.reply(task)
    assert w.timers[lease][1] == pytest.approx(w.clock.now + LINGER_S)
    w.advance(LINGER_S / 2)
    assert lease not in w.returned
    w.advance(LINGER_S)
    assert w.returned == {lease: False} and not w.policy.classes["k"].leases


def test_new_work_keeps_a_lingering_lease() -> None:
    w = World()
    first = w.submit()
    lease = w.grant()
    w.reply(first)
    w.advance(LINGER_S / 2)
    second = w.submit()
    assert second.lease is lease and lease not in w.timers  # the linger was cancelled
    w.advance(LINGER_S)
    assert lease not in w.returned
    w.reply(second)
    w.advance(LINGER_S)
    assert w.returned == {lease: False}


def test_a_stale_linger_timer_changes_nothing() -> None:
    w = World()
    task = w.submit()
    lease = w.grant()
    w.reply(task)
    cls, at = w.timers[lease]
    assert w.policy.linger_over(cls, lease, at - 1.0) == []
    assert lease.linger_at == at


def test_a_task_from_a_thread_that_may_push_goes_straight_to_an_idle_lease() -> None:
    w = World()
    first = w.submit()
    lease = w.grant()
    w.reply(first)
    assert lease in w.timers
    second = w.submit_now()
    assert second.lease is lease and second.state == "running" and lease in w.stale
    w.advance(LINGER_S)  # the linger armed before it fires, and changes nothing
    assert lease not in w.returned and not w.stale
    w.reply(second)
    assert w.outcomes[second.task_id] == ["ran"] and lease in w.timers
    w.advance(LINGER_S * 2)
    assert w.returned == {lease: False}


def test_push_now_leaves_a_task_to_the_queue_unless_a_lease_idles_with_nothing_waiting() -> None:
    w = World()
    assert w.policy.push_now(make_task(), lambda conn: True) is None  # no class, no lease yet
    first = w.submit_now()
    assert first.state == "queued"
    lease = w.grant()
    assert first.lease is lease
    busy = w.submit_now(fid=b"slow")
    assert busy.lease is None and w.policy.classes["k"].queue[0] is busy  # the lease runs the first
    behind = make_task()
    assert w.policy.push_now(behind, lambda conn: True) is None  # `busy` waits: it goes first
    w.reply(first)
    assert busy.lease is lease
    w.reply(busy)
    assert lease in w.timers
    # A connection that cannot take writes from threads: queued, then pushed by the pump.
    assert w.policy.push_now(make_task(), lambda conn: False) is None
    assert lease.linger_at is not None and not lease.in_flight  # nothing changed


# -- invariants, over random histories ---------------------------------------------------------------


class LeaseHistories(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.w = World()

    def leases(self) -> list[Lease]:
        return [lease for cls in self.w.policy.classes.values() for lease in cls.leases]

    def running(self) -> list[PendingTask]:
        return [task for lease in self.leases() for task in lease.in_flight.values()]

    @rule(
        key=st.sampled_from(["a", "b"]),
        fid=st.sampled_from([b"fast", b"slow"]),
        max_calls=st.sampled_from([0, 0, 1]),
        retries=st.integers(0, 1),
    )
    def submit(self, key: str, fid: bytes, max_calls: int, retries: int) -> None:
        self.w.submit(key, fid, max_calls, retries)

    @rule(key=st.sampled_from(["a", "b"]), fid=st.sampled_from([b"fast", b"slow"]), usable=st.booleans())
    def submit_now(self, key: str, fid: bytes, usable: bool) -> None:
        self.w.submit_now(key, fid, usable)

    @precondition(lambda self: self.w.requests)
    @rule(data=st.data(), connect=st.booleans())
    def grant(self, data: st.DataObject, connect: bool) -> None:
        self.w.grant(data.draw(st.sampled_from(sorted(self.w.requests))), connect)

    @precondition(lambda self: self.w.requests)
    @rule(data=st.data(), how=st.sampled_from(["cancelled", "refused", "failed"]))
    def end_request(self, data: st.DataObject, how: str) -> None:
        cls = self.w.end_request(data.draw(st.sampled_from(sorted(self.w.requests))))
        if how == "cancelled":
            self.w.after_pump(cls, self.w.policy.request_cancelled(cls))
        elif how == "refused":
            self.w.run(self.w.policy.refused(cls, "TaskUnschedulableError", "never"))
        else:
            self.w.run(self.w.policy.request_failed(cls, RuntimeError("node gone")))

    @precondition(lambda self: self.w.connecting)
    @rule(data=st.data(), ok=st.booleans())
    def connect(self, data: st.DataObject, ok: bool) -> None:
        cls, lease = data.draw(st.sampled_from(self.w.connecting))
        if ok:
            self.w.connect(lease)
        else:
            self.w.connecting.remove((cls, lease))
            self.w.after_pump(cls, self.w.policy.connect_failed(cls, lease))

    @precondition(lambda self: self.running())
    @rule(data=st.data(), rejected=st.booleans(), exiting=st.booleans())
    def reply(self, data: st.DataObject, rejected: bool, exiting: bool) -> None:
        self.worker_replies(data.draw(st.sampled_from(self.running())), rejected, exiting)

    def worker_replies(self, task: PendingTask, rejected: bool = False, exiting: bool = False) -> None:
        exec_s = FAST_S if task.spec.function_id == b"fast" else SLOW_S
        if task.lease.draining:  # a worker that said it exits sends every later task back
            rejected = exiting = True
        self.w.reply(task, result(exec_s, rejected=rejected, worker_exiting=exiting))

    @precondition(lambda self: self.leases())
    @rule(data=st.data())
    def worker_dies(self, data: st.DataObject) -> None:
        self.w.worker_died(data.draw(st.sampled_from(self.leases())))

    @precondition(lambda self: self.w.tasks)
    @rule(data=st.data(), force=st.booleans())
    def cancel(self, data: st.DataObject, force: bool) -> None:
        self.w.run(self.w.policy.cancel(data.draw(st.sampled_from(self.w.tasks)), force, False))

    @rule(seconds=st.sampled_from([0.01, 0.03, LINGER_S, 0.2]))
    def advance(self, seconds: float) -> None:
        self.w.advance(seconds)

    @invariant()
    def settled_at_most_once(self) -> None:
        for task in self.w.tasks:
            assert len(self.w.outcomes.get(task.task_id, [])) == (1 if task.state == "done" else 0)

    @invariant()
    def leases_hold_no_more_than_they_may(self) -> None:
        for lease in self.leases():
            assert len(lease.in_flight) <= MAX_IN_FLIGHT
            assert lease not in self.w.returned and not lease.dead

    @invariant()
    def nothing_waits_while_a_lease_has_room(self) -> None:
        # What lets a task queued behind others skip the lease scan (enqueue): true of
        # every class pumped since a function's pipeline depth last changed.
        for cls in self.w.policy.classes.values():
            if not cls.queue or cls.pumped_at != self.w.policy.depth_changes:
                continue
            room = self.w.capacity(cls.queue[0])
            for lease in cls.leases:
                if lease.conn is None or lease.draining:
                    continue
                held = len(lease.in_flight)
                assert held >= room or (lease.no_pipeline and held > 0), "a task waits beside room"

    @invariant()
    def no_idle_lease_outlives_its_linger(self) -> None:
        for lease in self.leases():
            if lease.conn is not None and not lease.in_flight:
                assert not lease.draining, "a drained lease was kept"
                assert lease in self.w.timers and self.w.timers[lease][1] > self.w.clock.now

    def teardown(self) -> None:
        """Let every request be granted and every task reply: each settles exactly once."""
        w = self.w
        for _ in range(1000):
            running = self.running()
            if running:
                self.worker_replies(running[0])
            elif w.connecting:
                w.connect(w.connecting[0][1])
            elif w.requests:
                nonce = min(w.requests)
                if nonce in w.cancel_asked:
                    cls = w.end_request(nonce)
                    w.after_pump(cls, w.policy.request_cancelled(cls))
                else:
                    w.grant(nonce)
            else:
                break
        assert all(len(w.outcomes.get(task.task_id, [])) == 1 for task in w.tasks), "a task was never settled"


LeaseHistories.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_lease_histories = LeaseHistories.TestCase
