"""How calls reach an actor, as a pure state machine: events in, actions out, a fake clock."""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from manta._private.common.clock import FakeClock
from manta._private.common.ids import ActorID, JobID, NodeID, TaskID, WorkerID
from manta._private.core_worker.actor_policy import (
    CHECK_AFTER_S,
    EXCESS_QUEUEING_WARNING_AT,
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
)
from manta._private.core_worker.actor_runtime import TERMINATE_METHOD
from manta._private.core_worker.task_manager import PendingTask
from manta._private.rpc.messages import ActorInfo, Address, TaskResult, TaskSpec
from manta.exceptions import ActorDiedError, ActorUnavailableError, PendingCallsLimitExceeded

JOB = JobID.from_int(1)
DRIVER_TASK = TaskID.for_driver(JOB)
OWNER = Address(NodeID.from_random(), WorkerID.from_random(), "127.0.0.1", 1, "", 2)
ACTOR = ActorID.from_random()
RESULT = TaskResult([], False, 0.001, False, False)


def info(state: str = "ALIVE", restarts: int = 0, cause: str = "", max_pending: int = 0) -> ActorInfo:
    return ActorInfo(
        ACTOR, state, OWNER if state == "ALIVE" else None, restarts, cause, None, "Counter", "", "ns",
        False, {}, 0, max_pending, False, OWNER,
    )  # fmt: skip


def make_call(retries: int = 0, with_args: bool = False, method: str = "f") -> PendingTask:
    spec = TaskSpec(
        TaskID.for_actor_task(ACTOR), JOB, DRIVER_TASK, f"Counter.{method}", b"f", method, b"", [], 1, OWNER,
        0, {}, None, 0, actor_id=ACTOR, method=method,
    )  # fmt: skip
    return PendingTask(spec, [], ["ref"] if with_args else [], [], retries, False, sched_key=None)


class World:
    """The policy inside a fake shell that carries out its actions as the submitter does,
    keeping connections, timers and outcomes as plain data (and checking each action)."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.policy = ActorCallPolicy(self.clock.monotonic)
        self.calls: list[PendingTask] = []
        self.followed: list[ActorState] = []
        self.connecting: ActorInfo | None = None
        self.conns = 0
        self.resolving: list[PendingTask] = []
        self.sent: list[tuple[PendingTask, Any, int]] = []  # (call, connection, attempt)
        self.outcomes: dict[TaskID, list[Any]] = {}
        self.timers: list[float] = []
        self.asked = 0
        self.warnings: list[Action] = []
        self.dead = 0

    @property
    def actor(self) -> ActorState:
        return self.policy.actors[ACTOR]

    # -- the shell ---------------------------------------------------------------------------
    def run(self, actions: list[Action]) -> list[Action]:
        for action in actions:
            if isinstance(action, Follow):
                assert action.actor not in self.followed, "followed twice"
                self.followed.append(action.actor)
            elif isinstance(action, Connect):
                assert self.connecting is None, "two connections at once"
                self.connecting = action.info
            elif isinstance(action, Watch):
                self.run(self.policy.pump(action.actor))
            elif isinstance(action, ResolveArgs):
                self.resolving.append(action.task)
            elif isinstance(action, Send):
                actor = action.actor
                assert actor.conn is not None and actor.in_flight.get(action.task.task_id) is action.task
                assert action.task.state == "running"
                self.sent.append((action.task, actor.conn, action.task.spec.attempt))
            elif isinstance(action, Settle):
                self.settle(action.task, "ran")
            elif isinstance(action, Fail):
                self.settle(action.task, action.error)
            elif isinstance(action, FailWithArgument):
                self.settle(action.task, action.blob)
            elif isinstance(action, ArmCheck):
                self.timers.append(action.at)
            elif isinstance(action, AskGcs):
                self.asked += 1
            elif isinstance(action, (Warn, WarnExcessQueueing)):
                self.warnings.append(action)
            elif isinstance(action, ActorDead):
                self.dead += 1
        return actions

    def settle(self, task: PendingTask, outcome: Any) -> None:
        assert task.state != "done", "a call settled twice"
        task.state = "done"
        self.outcomes.setdefault(task.task_id, []).append(outcome)

    # -- events, reported as the submitter does ------------------------------------------------
    def submit(self, retries: int = 0, with_args: bool = False) -> PendingTask:
        call = make_call(retries, with_args)
        self.calls.append(call)
        self.run(self.policy.submit(call))
        return call

    def submit_now(self, usable: bool = True) -> PendingTask:
        """A call from a thread that sends it itself where it can (send_now), else
        submitted as usual: as the submitter does."""
        call = make_call()
        self.calls.append(call)
        send = self.policy.send_now(call, lambda conn: usable) if ACTOR in self.policy.actors else None
        self.run([send] if send is not None else self.policy.submit(call))
        return call

    def args_ready(self, call: PendingTask, failed: bytes | None = None) -> list[Action]:
        self.resolving.remove(call)
        call.resolved = ["value"]  # type: ignore[list-item]
        return self.run(self.policy.args_ready(self.actor, call, failed))

    def publish(
        self, state: str = "ALIVE", restarts: int = 0, checked: bool = False, cause: str = ""
    ) -> None:
        self.run(self.policy.actor_info(info(state, restarts, cause), checked))

    def connect(self) -> Any:
        assert self.connecting is not None
        self.conns += 1
        conn, self.connecting = f"conn{self.conns}", None
        self.run(self.policy.connected(self.actor, info_of(self), conn))
        return conn

    def connect_failed(self) -> None:
        self.connecting = None
        self.run(self.policy.connect_failed(self.actor))

    def lose(self, conn: Any) -> None:
        """``conn`` breaks: the transport fails its calls after telling its close callback."""
        in_flight = [task for task, c, _ in self.sent if c == conn and task.state == "running"]
        self.run(self.policy.connection_lost(self.actor, conn, shutting_down=False))
        for task in in_flight:
            self.run(self.policy.replied(self.actor, task, None))

    def reply(self, call: PendingTask) -> list[Action]:
        return self.run(self.policy.replied(self.actor, call, RESULT))

    def check(self) -> None:
        self.clock.advance(CHECK_AFTER_S)
        due = [at for at in self.timers if at <= self.clock.now]
        self.timers = [at for at in self.timers if at > self.clock.now]
        for _ in due:
            self.run(self.policy.check(self.actor))


def info_of(w: World) -> ActorInfo:
    current = w.actor.info
    assert current is not None
    return current


def alive(w: World) -> Any:
    """Publish the actor alive and connect to it."""
    w.publish("ALIVE")
    return w.connect()


# -- order ---------------------------------------------------------------------------------------


def test_calls_wait_for_the_actor_then_go_in_order() -> None:
    w = World()
    calls = [w.submit() for _ in range(3)]
    assert w.followed == [w.actor] and not w.sent and w.connecting is None
    w.publish("ALIVE")
    assert w.connecting is not None and not w.sent  # nothing goes before a close is watched
    conn = w.connect()
    assert [(t, c) for t, c, _ in w.sent] == [(call, conn) for call in calls]


def test_a_call_whose_arguments_are_not_ready_holds_back_those_behind_it() -> None:
    w = World()
    alive(w)
    first = w.submit(with_args=True)
    second = w.submit()
    assert w.resolving == [first] and not w.sent
    w.args_ready(first)
    assert [t for t, _, _ in w.sent] == [first, second]


def test_a_call_with_a_failed_argument_fails_in_its_turn_unrun() -> None:
    w = World()
    alive(w)
    blocked = w.submit(with_args=True)
    failing = w.submit(with_args=True)
    w.args_ready(failing, b"error")
    assert failing.state == "queued"  # its turn has not come
    w.args_ready(blocked)
    assert w.outcomes[failing.task_id] == [b"error"] and [t for t, _, _ in w.sent] == [blocked]


def test_a_retried_call_goes_first() -> None:
    w = World()
    alive(w)
    first = w.submit()
    (settle,) = w.reply(first)
    assert isinstance(settle, Settle)
    w.outcomes.clear()
    first.state = "pending"  # as the task manager leaves a retry
    second = w.submit()
    w.run(w.policy.retry(w.actor, first, await_args=True))  # lost arguments: made again first
    assert [t for t, _, _ in w.sent][-1] is second
    w.run(w.policy.args_ready(w.actor, first, None))
    assert [t for t, _, _ in w.sent][-1] is first


# -- limits and warnings ---------------------------------------------------------------------------


def test_max_pending_calls_fails_calls_beyond_it() -> None:
    w = World()
    w.run(w.policy.actor_info(info("PENDING", max_pending=2)))
    w.submit(), w.submit()
    third = w.submit()
    (error,) = w.outcomes[third.task_id]
    assert isinstance(error, PendingCallsLimitExceeded)
    # The owner's call that ends an unreachable actor is queued all the same: refused, the
    # actor would live on.
    terminate = make_call(method=TERMINATE_METHOD)
    w.run(w.policy.submit(terminate))
    assert terminate.task_id not in w.outcomes and terminate in w.actor.queue


def test_excess_queueing_is_warned_about_at_doubling_thresholds() -> None:
    w = World()
    for _ in range(EXCESS_QUEUEING_WARNING_AT * 2 + 1):
        w.submit()
    assert len(w.warnings) == 2 and all(isinstance(a, WarnExcessQueueing) for a in w.warnings)
    assert w.actor.warn_pending_at == EXCESS_QUEUEING_WARNING_AT * 4


def test_a_pending_actor_that_cannot_be_placed_is_warned_about_once() -> None:
    w = World()
    w.publish("PENDING", cause="no node has 8 GPUs")
    w.publish("PENDING", cause="no node has 8 GPUs")
    assert w.warnings == [Warn("no node has 8 GPUs")]


# -- broken connections and the gcs's verdict ------------------------------------------------------


def test_calls_cut_off_wait_for_the_verdict_and_are_resent_after_a_restart() -> None:
    w = World()
    conn = alive(w)
    retried, unretried = w.submit(retries=1), w.submit(retries=0)
    w.lose(conn)
    assert not w.outcomes and len(w.timers) == 1
    w.publish("RESTARTING", restarts=1)
    (error,) = w.outcomes[unretried.task_id]
    assert isinstance(error, ActorUnavailableError)
    assert retried.state == "queued" and retried.retries_left == 0 and retried.spec.attempt == 1
    w.publish("ALIVE", restarts=1)
    new = w.connect()
    assert w.sent[-1] == (retried, new, 1)


def test_with_no_word_the_gcs_is_asked_and_alive_means_the_calls_may_have_run() -> None:
    w = World()
    conn = alive(w)
    call = w.submit()
    w.lose(conn)
    w.check()
    assert w.asked == 1
    w.publish("ALIVE", checked=True)
    (error,) = w.outcomes[call.task_id]
    assert isinstance(error, ActorUnavailableError)


def test_an_unreachable_actor_is_asked_about_later() -> None:
    w = World()
    w.publish("ALIVE")
    w.connect_failed()
    w.check()
    assert w.asked == 1


def test_an_earlier_instance_connection_breaking_after_the_restart_settles_at_once() -> None:
    w = World()
    conn = alive(w)
    call = w.submit(retries=-1)
    w.publish("ALIVE", restarts=1)  # the gcs's word first: the old connection is dropped
    assert w.actor.conn is None
    w.lose(conn)
    assert call.state == "queued" and not w.timers
    new = w.connect()
    assert w.sent[-1] == (call, new, 1) and call.retries_left == -1


def test_one_breaking_once_connected_to_the_new_instance_settles_at_the_check() -> None:
    w = World()
    conn = alive(w)
    call = w.submit(retries=1)
    w.publish("ALIVE", restarts=1)
    new = w.connect()
    w.lose(conn)
    assert call.state == "running" and len(w.timers) == 1
    w.check()
    assert w.asked == 0 and w.sent[-1] == (call, new, 1)


def test_death_fails_every_call_with_the_cause() -> None:
    w = World()
    conn = alive(w)
    running = w.submit()
    w.actor.conn = None  # now queued behind a reconnection
    queued = w.submit()
    w.publish("DEAD", cause="it was killed")
    assert w.dead == 1 and conn
    for call in (running, queued):
        (error,) = w.outcomes[call.task_id]
        assert isinstance(error, ActorDiedError) and "it was killed" in str(error)
    late = w.submit()
    assert isinstance(w.outcomes[late.task_id][0], ActorDiedError)
    w.publish("ALIVE", restarts=5)  # never back from the dead
    assert w.actor.info is not None and w.actor.info.state == "DEAD"


def test_calls_in_flight_at_a_death_wait_for_their_connection_to_close() -> None:
    # An actor exiting on purpose answers the calls before its exit; the gcs's word of the
    # death can arrive first (a Pool's retiring actor: its last chunk failed with the
    # exit's cause though it had run).
    w = World()
    conn = alive(w)
    answered, unanswered = w.submit(), w.submit()
    w.publish("DEAD", cause="__ray_terminate__ was called")
    assert w.dead == 1 and not w.outcomes and len(w.timers) == 1
    w.reply(answered)
    assert w.outcomes[answered.task_id] == ["ran"]
    w.lose(conn)
    (error,) = w.outcomes[unanswered.task_id]
    assert isinstance(error, ActorDiedError) and "__ray_terminate__ was called" in str(error)


def test_calls_in_flight_at_a_death_fail_at_the_check_if_the_connection_stays_open() -> None:
    w = World()
    alive(w)
    call = w.submit()
    w.publish("DEAD", cause="its node died")
    assert not w.outcomes
    w.check()
    assert w.asked == 0 and isinstance(w.outcomes[call.task_id][0], ActorDiedError)


def test_a_retry_asked_for_after_the_death_fails() -> None:
    w = World()
    alive(w)
    call = w.submit(retries=1)
    w.publish("DEAD", cause="it exited")
    w.reply(call)  # the shell's task manager would now retry it: the actor is gone
    call.state = "running"
    w.run(w.policy.retry(w.actor, call, await_args=False))
    assert isinstance(w.outcomes[call.task_id][-1], ActorDiedError) and not w.actor.queue


def test_a_call_from_a_thread_that_may_send_goes_straight_to_an_idle_actor() -> None:
    w = World()
    conn = alive(w)
    first = w.submit_now()
    assert w.sent == [(first, conn, 0)] and w.actor.in_flight == {first.task_id: first}
    # One in flight: the next goes the usual way, behind it on the same connection.
    assert w.policy.send_now(make_call(), lambda c: True) is None and not w.actor.queue
    second = w.submit_now()
    assert w.sent == [(first, conn, 0), (second, conn, 0)]
    w.reply(first)
    w.reply(second)
    assert w.policy.send_now(make_call(), lambda c: False) is None  # a connection that cannot
    assert not w.actor.in_flight and not w.actor.queue


def test_a_call_from_a_thread_waits_like_any_other_for_an_actor_not_alive_or_connected() -> None:
    w = World()
    w.submit()  # followed from now on
    assert w.policy.send_now(make_call(), lambda c: True) is None  # no word from the gcs yet
    w.publish("ALIVE")
    assert w.policy.send_now(make_call(), lambda c: True) is None  # not connected yet
    w.connect()
    w.reply(w.sent[0][0])
    w.publish("RESTARTING", restarts=1)
    assert w.policy.send_now(make_call(), lambda c: True) is None


def test_shutting_down_decides_nothing() -> None:
    w = World()
    conn = alive(w)
    w.submit()
    assert w.policy.connection_lost(w.actor, conn, shutting_down=True) == []


# -- properties ------------------------------------------------------------------------------------


class ActorCalls(RuleBasedStateMachine):
    """Any interleaving of calls, replies, broken connections and the gcs's word: every call
    settles at most once, first attempts go out in submission order, and a dead actor
    leaves nothing pending."""

    def __init__(self) -> None:
        super().__init__()
        self.w = World()
        self.generation = 0
        self.dead = False
        self.conns: list[Any] = []

    @rule(retries=st.sampled_from([0, 1, -1]), with_args=st.booleans())
    def submit(self, retries: int, with_args: bool) -> None:
        self.w.submit(retries, with_args)

    @rule(usable=st.booleans())
    def submit_now(self, usable: bool) -> None:
        self.w.submit_now(usable)

    @precondition(lambda self: self.w.resolving)
    @rule(data=st.data(), failed=st.booleans())
    def args_ready(self, data: st.DataObject, failed: bool) -> None:
        call = data.draw(st.sampled_from(self.w.resolving))
        self.w.args_ready(call, b"error" if failed else None)

    @precondition(lambda self: self.w.connecting is not None)
    @rule(ok=st.booleans())
    def connect(self, ok: bool) -> None:
        if ok:
            self.conns.append(self.w.connect())
        else:
            self.w.connect_failed()

    @precondition(lambda self: ACTOR in self.w.policy.actors and self.w.actor.in_flight)
    @rule(data=st.data())
    def reply(self, data: st.DataObject) -> None:
        call = data.draw(st.sampled_from(list(self.w.actor.in_flight.values())))
        self.w.reply(call)

    @precondition(lambda self: self.conns)
    @rule()
    def lose_connection(self) -> None:
        self.w.lose(self.conns.pop(0))

    @precondition(lambda self: not self.dead)
    @rule(
        state=st.sampled_from(["ALIVE", "RESTARTING", "PENDING"]),
        restart=st.booleans(),
        checked=st.booleans(),
    )
    def publish(self, state: str, restart: bool, checked: bool) -> None:
        self.generation += restart
        self.w.publish(state, self.generation, checked)

    @rule()
    def die(self) -> None:
        self.dead = True
        self.w.publish("DEAD", self.generation, cause="it exited")

    @rule()
    def timers_fire(self) -> None:
        self.w.check()

    @invariant()
    def first_attempts_go_in_submission_order(self) -> None:
        order = {call.task_id: i for i, call in enumerate(self.w.calls)}
        firsts = [order[t.task_id] for t, _, attempt in self.w.sent if attempt == 0]
        assert firsts == sorted(firsts) and len(set(firsts)) == len(firsts)

    @invariant()
    def each_call_is_in_one_place(self) -> None:
        if ACTOR not in self.w.policy.actors:
            return
        actor = self.w.actor
        places = [t.task_id for t in actor.queue if t.state != "done"]
        places += list(actor.in_flight) + [t.task_id for t in actor.interrupted if t.state != "done"]
        assert len(places) == len(set(places))
        for call in self.w.calls:
            assert (call.task_id in places) != (call.state == "done"), call.state

    @invariant()
    def a_dead_actor_leaves_nothing_pending(self) -> None:
        # Only calls in flight on an open connection wait, for it to close or the check.
        if self.dead:
            waiting = set(self.w.actor.in_flight) if self.w.actor.conn is not None else set()
            assert all(call.state == "done" or call.task_id in waiting for call in self.w.calls)
            assert not waiting or self.w.timers


ActorCalls.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_actor_calls = ActorCalls.TestCase
