"""The node's scheduler as a pure state machine: events in, actions out, a fake clock."""

from __future__ import annotations

from collections.abc import Hashable

from hypothesis import given
from hypothesis import strategies as st

from manta._private.common.clock import FakeClock
from manta._private.common.ids import JobID, LeaseID, WorkerID
from manta._private.common.resources import NodeResources, to_unit_map
from manta._private.node.scheduler import (
    START_PAUSE_MAX_S,
    START_PAUSE_S,
    Action,
    Grant,
    LeaseRequest,
    ReapWorker,
    Reject,
    ReportInfeasible,
    Scheduler,
    SchedulerConfig,
    StartWorker,
    StopWorker,
    WorkersFailToStart,
)

JOB_A = JobID.from_int(1)
JOB_B = JobID.from_int(2)


def scheduler(
    cpus: float = 2,
    *,
    soft_limit: int = 2,
    max_starting: int = 2,
    idle_timeout_s: float = 5.0,
    **other: float,
) -> Scheduler:
    return Scheduler(
        NodeResources({"CPU": cpus, **other}),
        FakeClock(),
        SchedulerConfig(soft_limit=soft_limit, max_starting=max_starting, idle_timeout_s=idle_timeout_s),
    )


def request(
    nonce: int, *, client: Hashable = "c1", job: JobID = JOB_A, env: str = "", **amounts: float
) -> LeaseRequest:
    return LeaseRequest((client, nonce), client, job, to_unit_map(amounts or {"CPU": 1}), env)


def of(kind: type, actions: list[Action]) -> list:
    return [a for a in actions if isinstance(a, kind)]


def idle_workers(s: Scheduler, count: int) -> list[WorkerID]:
    started = of(StartWorker, s.prestart(count))
    for action in started:
        assert s.worker_registered(action.worker_id) == []
    return [a.worker_id for a in started]


def test_request_starts_a_worker_and_is_granted_when_it_registers() -> None:
    s = scheduler()
    req = request(1)
    [start] = s.request(req)
    assert isinstance(start, StartWorker)
    assert s.workers[start.worker_id].state == "starting"
    [grant] = s.worker_registered(start.worker_id)
    assert isinstance(grant, Grant)
    assert grant.request is req
    assert grant.lease.worker_id == start.worker_id
    assert grant.lease.client == "c1"
    assert s.leases == {grant.lease.lease_id: grant.lease}
    assert s.lease_of_worker(start.worker_id) is grant.lease
    assert s.pending == {}
    assert s.resources.available_amounts() == {"CPU": 1.0}
    worker = s.workers[start.worker_id]
    assert (worker.state, worker.job_id, worker.env_key) == ("leased", JOB_A, "")


def test_idle_worker_is_granted_at_once() -> None:
    s = scheduler()
    [w] = idle_workers(s, 1)
    [grant] = s.request(request(1))
    assert isinstance(grant, Grant) and grant.lease.worker_id == w


def test_grants_are_first_in_first_out() -> None:
    s = scheduler(cpus=1)
    idle_workers(s, 2)
    reqs = [request(i) for i in range(4)]
    [first] = s.request(reqs[0])
    for req in reqs[1:]:
        assert s.request(req) == []  # no CPU left
    order = [first.request]
    lease = first.lease
    for _ in range(3):
        [grant] = s.return_lease(lease.lease_id, kill=False)
        order.append(grant.request)
        lease = grant.lease
    assert order == reqs


def test_a_request_that_does_not_fit_does_not_block_smaller_ones() -> None:
    s = scheduler(cpus=2)
    idle_workers(s, 2)
    [grant] = s.request(request(0, CPU=1))
    assert s.request(request(1, CPU=2)) == []
    [small] = s.request(request(2, CPU=1))
    assert isinstance(small, Grant) and small.request.key == ("c1", 2)
    assert grant.request.key == ("c1", 0)


def test_worker_starts_are_limited_by_max_starting() -> None:
    s = scheduler(cpus=8, max_starting=3)
    starts = []
    for i in range(6):
        starts += of(StartWorker, s.request(request(i)))
    assert len(starts) == 3
    # Each registration grants one request and lets one more worker start.
    actions = s.worker_registered(starts[0].worker_id)
    assert len(of(Grant, actions)) == 1
    assert len(of(StartWorker, actions)) == 1


def test_workers_started_only_for_requests_that_could_run_now() -> None:
    s = scheduler(cpus=2, max_starting=10)
    starts = []
    for i in range(5):
        starts += of(StartWorker, s.request(request(i)))
    assert len(starts) == 2  # two CPUs: a third worker would only wait


def test_workers_serve_one_job_and_one_runtime_env() -> None:
    s = scheduler(cpus=4)
    [w] = idle_workers(s, 1)
    [grant] = s.request(request(0, job=JOB_A, env="env1"))
    assert grant.lease.worker_id == w
    s.return_lease(grant.lease.lease_id, kill=False)
    assert s.workers[w].state == "idle"
    # Another job, or another environment of the same job, needs a fresh worker.
    assert of(StartWorker, s.request(request(1, job=JOB_B, env="env1")))
    assert not of(Grant, s.request(request(2, job=JOB_A, env="env2")))
    # The same job and environment reuses it.
    [again] = of(Grant, s.request(request(3, job=JOB_A, env="env1")))
    assert again.lease.worker_id == w


def test_bound_worker_is_preferred_over_a_fresh_one() -> None:
    s = scheduler(cpus=4)
    w1, _w2 = idle_workers(s, 2)
    [grant] = s.request(request(0))
    bound = grant.lease.worker_id
    s.return_lease(grant.lease.lease_id, kill=False)
    [again] = s.request(request(1))
    assert again.lease.worker_id == bound == w1


def test_infeasible_request_is_reported_once() -> None:
    s = scheduler(cpus=2)
    req = request(0, CPU=4, TPU=1)
    [report] = s.request(req)
    assert isinstance(report, ReportInfeasible)
    assert report.shortfall == {"CPU": (4.0, 2.0), "TPU": (1.0, 0.0)}
    assert of(ReportInfeasible, s.request(request(1))) == []
    assert of(ReportInfeasible, s.tick() + s.prestart(1)) == []
    pending, infeasible = s.pending_shapes()
    assert infeasible == [({"CPU": 4.0, "TPU": 1.0}, {})]
    assert pending == [({"CPU": 1.0}, {})]  # waits for its worker to start
    # It stays queued (the cluster may grow) until cancelled.
    assert s.cancel(("c1", 0), "gave up") == [Reject(req, "gave up")]
    assert s.cancel(("c1", 0)) == []


def test_pending_shapes_lists_waiting_requests_with_their_label_selectors() -> None:
    s = scheduler(cpus=1)
    s.request(request(0))
    s.request(request(1, CPU=0.5))
    zoned = request(2)
    zoned.strategy = {"type": "node_label", "hard": {"zone": ["in", ["b"]]}, "soft": {}}
    s.request(zoned)
    assert s.pending_shapes() == (
        [({"CPU": 1.0}, {}), ({"CPU": 0.5}, {}), ({"CPU": 1.0}, {"zone": ["in", ["b"]]})],
        [],
    )


def test_job_finished_stops_its_workers_and_rejects_its_requests() -> None:
    s = scheduler(cpus=2)
    w1, w2 = idle_workers(s, 2)
    [leased] = s.request(request(0, job=JOB_A))
    [other] = s.request(request(1, job=JOB_B))
    s.request(request(2, job=JOB_A))
    actions = s.job_finished(JOB_A)
    assert StopWorker(leased.lease.worker_id, f"job {JOB_A.hex()} finished") in actions
    [reject] = of(Reject, actions)
    assert reject.request.key == ("c1", 2) and reject.reason == "the job finished"
    assert leased.lease.lease_id not in s.leases
    assert other.lease.lease_id in s.leases
    assert s.workers[other.lease.worker_id].state == "leased"
    assert s.resources.available_amounts() == {"CPU": 1.0}
    assert {w1, w2} == {leased.lease.worker_id, other.lease.worker_id}


def test_job_finished_spares_what_the_gcs_waits_for() -> None:
    # A detached actor outlives its job, also while its lease still waits for room.
    s = scheduler(cpus=1)
    idle_workers(s, 1)
    assert of(Grant, s.request(request(0, job=JOB_B)))  # holds the only CPU
    s.request(request(1, job=JOB_A))
    s.request(request(2, client="gcs", job=JOB_A))
    [reject] = of(Reject, s.job_finished(JOB_A, spare_client="gcs"))
    assert reject.request.key == ("c1", 1)
    assert ("gcs", 2) in s.pending  # it waits on for room


def test_job_finished_stops_idle_workers_bound_to_it() -> None:
    s = scheduler()
    [w] = idle_workers(s, 1)
    [grant] = s.request(request(0))
    s.return_lease(grant.lease.lease_id, kill=False)
    assert s.job_finished(JOB_A) == [StopWorker(w, f"job {JOB_A.hex()} finished")]
    assert s.job_finished(JOB_B) == []


def test_client_gone_drops_its_requests_and_reclaims_its_leases() -> None:
    s = scheduler(cpus=1)
    [w] = idle_workers(s, 1)
    [grant] = s.request(request(0, client="gone"))
    s.request(request(1, client="gone"))
    waiting = request(2, client="stays")
    s.request(waiting)
    actions = s.client_gone("gone")
    assert StopWorker(w, "its lease holder reported it broken") in actions
    assert of(Reject, actions) == []
    assert grant.lease.lease_id not in s.leases
    assert list(s.pending) == [("stays", 2)]
    # The freed CPU goes to the other client, on a new worker.
    [start] = of(StartWorker, actions)
    [granted] = s.worker_registered(start.worker_id)
    assert isinstance(granted, Grant) and granted.request is waiting


def test_set_blocked_lends_cpu_so_another_request_runs() -> None:
    s = scheduler(cpus=1)
    w1, w2 = idle_workers(s, 2)
    [first] = s.request(request(0))
    assert s.request(request(1)) == []
    [second] = s.set_blocked(first.lease.worker_id, True)
    assert isinstance(second, Grant) and second.lease.worker_id != first.lease.worker_id
    assert s.set_blocked(first.lease.worker_id, True) == []  # already blocked
    assert s.set_blocked(first.lease.worker_id, False) == []
    assert s.resources.available["CPU"] < 0  # briefly oversubscribed, as in Ray
    s.return_lease(second.lease.lease_id, kill=False)
    s.return_lease(first.lease.lease_id, kill=False)
    assert s.resources.available == s.resources.total
    assert {w1, w2} == {first.lease.worker_id, second.lease.worker_id}


def test_set_blocked_for_unknown_or_idle_worker_is_ignored() -> None:
    s = scheduler()
    [w] = idle_workers(s, 1)
    assert s.set_blocked(w, True) == []
    assert s.set_blocked(WorkerID.from_random(), True) == []
    assert s.resources.available == s.resources.total


def test_return_lease_while_blocked_restores_resources() -> None:
    s = scheduler(cpus=1)
    idle_workers(s, 1)
    [grant] = s.request(request(0))
    s.set_blocked(grant.lease.worker_id, True)
    s.return_lease(grant.lease.lease_id, kill=False)
    assert s.resources.available == s.resources.total
    assert not s.workers[grant.lease.worker_id].blocked


def test_return_lease_with_kill_stops_the_worker() -> None:
    s = scheduler()
    [w] = idle_workers(s, 1)
    [grant] = s.request(request(0))
    actions = s.return_lease(grant.lease.lease_id, kill=True)
    assert actions == [StopWorker(w, "its lease holder reported it broken")]
    assert s.workers[w].state == "dead"
    assert s.resources.available == s.resources.total
    assert s.return_lease(grant.lease.lease_id, kill=True) == []
    assert s.return_lease(LeaseID.from_random(), kill=False) == []
    # A dead worker is never granted again.
    assert of(Grant, s.request(request(1))) == []


def test_returned_worker_is_idle_from_now() -> None:
    s = scheduler()
    [w] = idle_workers(s, 1)
    [grant] = s.request(request(0))
    s.clock.advance(42)  # type: ignore[attr-defined]
    s.return_lease(grant.lease.lease_id, kill=False)
    assert s.workers[w].idle_since == s.clock.monotonic()


def test_worker_died_returns_its_lease_and_frees_its_resources() -> None:
    s = scheduler(cpus=1)
    [w] = idle_workers(s, 1)
    [grant] = s.request(request(0))
    waiting = request(1)
    s.request(waiting)
    lease, actions = s.worker_died(w)
    assert lease is grant.lease
    assert w not in s.workers
    assert s.leases == {}
    assert len(of(StartWorker, actions)) == 1  # for the waiting request
    assert s.worker_died(w) == (None, [])
    assert s.return_lease(grant.lease.lease_id, kill=False) == []
    assert s.resources.available_amounts() == {"CPU": 1.0}


def test_registration_of_unknown_or_registered_worker_is_ignored() -> None:
    s = scheduler()
    [w] = idle_workers(s, 1)
    assert s.worker_registered(w) == []
    assert s.worker_registered(WorkerID.from_random()) == []


def test_tick_reaps_idle_workers_above_the_soft_limit_after_the_timeout() -> None:
    s = scheduler(soft_limit=2, idle_timeout_s=5.0)
    clock: FakeClock = s.clock  # type: ignore[assignment]
    oldest = idle_workers(s, 1)
    clock.advance(1)
    newer = idle_workers(s, 3)
    assert s.tick() == []  # nobody has idled long enough
    clock.advance(4)
    # Two above the limit; only the oldest has idled 5 s. It is asked to go.
    assert s.tick() == [ReapWorker(oldest[0], "idle above the node's worker limit")]
    s.worker_died(oldest[0])
    clock.advance(0.999)
    assert s.tick() == []
    clock.advance(0.001)
    stopped = s.tick()
    assert len(stopped) == 1 and stopped[0].worker_id == newer[0]
    s.worker_died(newer[0])
    # At the soft limit, idle workers stay however long they idle.
    clock.advance(1000)
    assert s.tick() == []
    assert sum(1 for w in s.workers.values() if w.state != "dead") == 2


def test_a_worker_that_refuses_to_be_reaped_stays_idle_and_is_asked_again_later() -> None:
    s = scheduler(soft_limit=0, idle_timeout_s=5.0)
    clock: FakeClock = s.clock  # type: ignore[assignment]
    (worker,) = idle_workers(s, 1)
    clock.advance(5)
    assert s.tick() == [ReapWorker(worker, "idle above the node's worker limit")]
    assert s.tick() == []  # asked once at a time
    assert s.reap_refused(worker) == []
    assert s.workers[worker].state == "idle"
    assert s.tick() == []  # its idle time starts over
    clock.advance(5)
    assert s.tick() == [ReapWorker(worker, "idle above the node's worker limit")]


def test_tick_never_reaps_leased_or_starting_workers() -> None:
    s = scheduler(cpus=8, soft_limit=0, max_starting=8)
    idle_workers(s, 2)
    s.request(request(0))
    s.request(request(1))
    s.prestart(1)
    s.clock.advance(100)  # type: ignore[attr-defined]
    assert s.tick() == []


def test_gpu_requests_get_device_instances() -> None:
    s = scheduler(cpus=4, GPU=2)
    idle_workers(s, 3)
    [half] = s.request(request(0, CPU=1, GPU=0.5))
    [whole] = s.request(request(1, CPU=1, GPU=1))
    assert half.lease.allocation.instance_ids() == {"GPU": ["0"]}
    assert whole.lease.allocation.instance_ids() == {"GPU": ["1"]}
    assert s.request(request(2, CPU=1, GPU=1)) == []


_events = st.lists(
    st.one_of(
        st.tuples(st.just("request"), st.sampled_from([0.5, 1.0, 2.0, 3.0]), st.sampled_from(["a", "b"])),
        st.tuples(st.just("register"), st.integers(0, 20)),
        st.tuples(st.just("return"), st.integers(0, 20), st.booleans()),
        st.tuples(st.just("block"), st.integers(0, 20), st.booleans()),
        st.tuples(st.just("died"), st.integers(0, 20)),
        st.tuples(st.just("client_gone"), st.sampled_from(["a", "b"])),
        st.tuples(st.just("job_finished"), st.sampled_from([JOB_A, JOB_B])),
        st.tuples(st.just("tick"), st.floats(0, 10)),
    ),
    max_size=40,
)


@given(_events)
def test_bookkeeping_invariants_hold_under_any_event_sequence(events: list[tuple]) -> None:
    s = scheduler(cpus=2, soft_limit=1, max_starting=2)
    clock: FakeClock = s.clock  # type: ignore[assignment]
    nonce = 0
    granted: set[Hashable] = set()
    for event in events:
        kind = event[0]
        workers = sorted(s.workers)
        leases = sorted(s.leases)
        if kind == "request":
            nonce += 1
            actions = s.request(
                request(nonce, client=event[2], job=JOB_A if event[2] == "a" else JOB_B, CPU=event[1])
            )
        elif kind == "register":
            actions = s.worker_registered(workers[event[1] % len(workers)]) if workers else []
        elif kind == "return":
            actions = s.return_lease(leases[event[1] % len(leases)], kill=event[2]) if leases else []
        elif kind == "block":
            actions = s.set_blocked(workers[event[1] % len(workers)], event[2]) if workers else []
        elif kind == "died":
            actions = s.worker_died(workers[event[1] % len(workers)])[1] if workers else []
        elif kind == "client_gone":
            actions = s.client_gone(event[1])
        elif kind == "job_finished":
            actions = s.job_finished(event[1])
        else:
            clock.advance(event[1])
            actions = s.tick()
        for grant in of(Grant, actions):
            assert grant.request.key not in granted, "a request was granted twice"
            assert grant.request.key not in s.pending
            granted.add(grant.request.key)
        # Each lease is held by exactly one live, leased worker, which points back at it.
        holders = [w for w in s.workers.values() if w.lease is not None]
        assert sorted(w.lease.lease_id for w in holders) == sorted(s.leases)
        for worker in holders:
            assert worker.state == "leased"
        # Resources: what leases hold plus what is available is the total, exactly.
        lent = sum(lease.allocation.lent_cpu for lease in s.leases.values())
        held = sum(lease.allocation.units.get("CPU", 0) for lease in s.leases.values())
        assert s.resources.available.get("CPU", 0) + held - lent == s.resources.total["CPU"]
        # Requests never start more workers at once than max_starting.
        assert sum(1 for w in s.workers.values() if w.state == "starting") <= s.config.max_starting
    for key in list(s.pending):
        s.cancel(key)
    for lease_id in list(s.leases):
        assert s.return_lease(lease_id, kill=False) == []
    assert s.resources.available == s.resources.total


def test_bundles_are_reserved_all_or_none_then_become_group_resources() -> None:
    s = scheduler(cpus=4)
    assert not s.prepare_bundles("pg", [(0, {"CPU": 2}), (1, {"CPU": 3})])  # 5 > 4: nothing held
    assert s.resources.available_amounts()["CPU"] == 4 and s.bundles == {}
    assert s.prepare_bundles("pg", [(0, {"CPU": 1}), (1, {"CPU": 2})])
    assert s.resources.available_amounts()["CPU"] == 1
    assert "CPU_group_pg" not in s.resources.available_amounts()  # not usable before the commit
    s.commit_bundles("pg", [0, 1])
    free = s.resources.available_amounts()
    assert free["CPU_group_pg"] == 3 and free["CPU_group_0_pg"] == 1 and free["CPU_group_1_pg"] == 2
    assert free["bundle_group_pg"] == 2000 and free["bundle_group_1_pg"] == 1000


def test_releasing_a_group_stops_its_work_and_gives_everything_back() -> None:
    s = scheduler(cpus=4)
    [worker] = idle_workers(s, 1)
    assert s.prepare_bundles("pg", [(0, {"CPU": 2})])
    s.commit_bundles("pg", [0])
    [grant] = of(Grant, s.request(request(1, CPU_group_0_pg=1)))
    assert grant.lease.worker_id == worker
    actions = s.release_bundles("pg", None)
    [stop] = of(StopWorker, actions)
    assert stop.worker_id == worker and "placement group" in stop.reason
    assert s.resources.available_amounts() == {"CPU": 4.0} and s.resources.total_amounts() == {"CPU": 4.0}
    assert s.leases == {} and s.bundles == {}
    assert s.release_bundles("pg", None) == []  # twice: nothing more


def test_work_in_a_gpu_bundle_is_given_that_bundles_devices() -> None:
    s = scheduler(cpus=2, GPU=2)
    assert s.prepare_bundles("pg", [(0, {"GPU": 1}), (1, {"GPU": 1})])
    assert s.bundle_devices(to_unit_map({"GPU_group_0_pg": 1})) == {}  # not committed yet
    s.commit_bundles("pg", [0, 1])
    first = s.bundle_devices(to_unit_map({"GPU_group_0_pg": 1}))
    second = s.bundle_devices(to_unit_map({"GPU_group_1_pg": 0.5}))
    assert len(first["GPU"]) == 1 and len(second["GPU"]) == 1 and first != second
    assert sorted(s.bundle_devices(to_unit_map({"GPU_group_pg": 1}))["GPU"]) == ["0", "1"]
    assert s.bundle_devices(to_unit_map({"CPU_group_0_pg": 1})) == {}


def _fail_starts(s: Scheduler, count: int) -> list[Action]:
    """The workers being started die before they register, ``count`` times over."""
    actions: list[Action] = []
    for _ in range(count):
        starting = [w for w, record in s.workers.items() if record.state == "starting"]
        assert starting, "no worker is being started"
        _, more = s.worker_died(starting[0])
        actions += more
    return actions


def test_workers_dying_before_they_register_pause_the_starts_and_say_why() -> None:
    s = scheduler(max_starting=1)
    s.request(request(1, job=JOB_B))
    # Each failure is replaced at once, until the third in a row.
    assert len(of(StartWorker, _fail_starts(s, 2))) == 2
    actions = _fail_starts(s, 1)
    [failing] = of(WorkersFailToStart, actions)
    assert (failing.failures, failing.pause_s, failing.job_ids) == (3, START_PAUSE_S, (JOB_B,))
    assert of(StartWorker, actions) == []
    assert of(StartWorker, s.request(request(2))) == []  # nor for a new request
    assert of(StartWorker, s.tick()) == []
    s.clock.advance(START_PAUSE_S)  # type: ignore[attr-defined]
    [start] = of(StartWorker, s.tick())
    # It fails again: the pause doubles, up to its cap.
    [again] = of(WorkersFailToStart, s.worker_died(start.worker_id)[1])
    assert again.pause_s == 2 * START_PAUSE_S
    for _ in range(10):
        s.clock.advance(START_PAUSE_MAX_S)  # type: ignore[attr-defined]
        [start] = of(StartWorker, s.tick())
        [again] = of(WorkersFailToStart, s.worker_died(start.worker_id)[1])
    assert again.pause_s == START_PAUSE_MAX_S


def test_a_worker_that_registers_ends_a_run_of_failed_starts() -> None:
    s = scheduler(max_starting=1)
    s.request(request(1))
    _fail_starts(s, 2)
    [start] = [w for w, record in s.workers.items() if record.state == "starting"]
    [grant] = of(Grant, s.worker_registered(start))
    s.request(request(2))
    assert of(WorkersFailToStart, _fail_starts(s, 2)) == []  # counted afresh
    # A worker killed once it had registered is no failed start.
    s.return_lease(grant.lease.lease_id, kill=True)
    assert of(WorkersFailToStart, s.worker_died(grant.lease.worker_id)[1]) == []
