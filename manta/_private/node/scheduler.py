"""The node daemon's decisions: which lease request gets which worker, and when workers
start and stop. A pure state machine: methods take events and return actions; the
service carries the actions out. No sockets, no threads; time comes from the clock.

Workers start *unassigned* and are bound to a job and a runtime environment by their
first lease; afterwards they only serve that job and environment (imports, sys.path and
environment variables of one job must not leak into another's tasks).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from manta._private.common.clock import Clock
from manta._private.common.ids import JobID, LeaseID, WorkerID
from manta._private.common.placement import hard_labels
from manta._private.common.resources import (
    INSTANCE_RESOURCES,
    Allocation,
    NodeResources,
    bundle_capacity,
    from_unit_map,
    in_group,
    split_group_resource,
    to_unit_map,
)

# What a waiting request needs: its resources, and the labels its node must have.
Demand = tuple[dict[str, float], dict[str, Any]]

# Workers that die before they register, in a row, before starting more pauses (a broken
# environment, a crash at start-up: each would be replaced at once, for ever); the first
# pause, doubling with each further failure up to the last.
START_FAILURES_BEFORE_PAUSE = 3
START_PAUSE_S = 1.0
START_PAUSE_MAX_S = 30.0


@dataclass(slots=True)
class LeaseRequest:
    key: Hashable  # (client, nonce): unique per requester
    client: Hashable
    job_id: JobID
    units: dict[str, int]
    env_key: str
    reported_infeasible: bool = False
    # What must be free to place it, when more than it holds (see RequestLease.placement).
    place: dict[str, int] | None = None
    # The wire form of its scheduling strategy (the node's cluster view reads it).
    strategy: Any = "DEFAULT"

    @property
    def need(self) -> dict[str, int]:
        if self.place is None:
            return self.units
        return {
            n: max(self.units.get(n, 0), self.place.get(n, 0)) for n in self.units.keys() | self.place.keys()
        }


# Why a worker is stopped when its lease comes back broken (its owner lost it).
BROKEN_LEASE_REASON = "its lease holder reported it broken"


@dataclass(slots=True)
class Lease:
    lease_id: LeaseID
    worker_id: WorkerID
    client: Hashable
    allocation: Allocation
    # When it was granted (clock.monotonic()): the memory monitor kills the newest first.
    granted_at: float = 0.0


@dataclass(slots=True)
class WorkerRecord:
    worker_id: WorkerID
    state: str = "starting"  # starting -> idle <-> leased (idle -> reaping -> idle | dead) -> dead
    job_id: JobID | None = None
    env_key: str | None = None
    lease: Lease | None = None
    idle_since: float = 0.0
    blocked: bool = False


# -- actions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartWorker:
    worker_id: WorkerID


@dataclass(frozen=True, slots=True)
class StopWorker:
    worker_id: WorkerID
    reason: str


@dataclass(frozen=True, slots=True)
class ReapWorker:
    """Ask an idle worker to exit; it may refuse while it owns objects others use."""

    worker_id: WorkerID
    reason: str


@dataclass(frozen=True, slots=True)
class Grant:
    request: LeaseRequest
    lease: Lease


@dataclass(frozen=True, slots=True)
class Reject:
    request: LeaseRequest
    reason: str


@dataclass(frozen=True, slots=True)
class ReportInfeasible:
    request: LeaseRequest
    shortfall: dict[str, tuple[float, float]]


@dataclass(frozen=True, slots=True)
class WorkersFailToStart:
    """Workers die before they register: starting more pauses ``pause_s``, and the jobs
    waiting for a worker here hear why (``worker_id``: the last that failed)."""

    worker_id: WorkerID
    failures: int
    pause_s: float
    job_ids: tuple[JobID, ...]


Action = StartWorker | StopWorker | ReapWorker | Grant | Reject | ReportInfeasible | WorkersFailToStart


@dataclass(frozen=True, slots=True)
class SchedulerStats:
    """What the scheduler holds, for metrics and tools."""

    waiting_for_workers: int  # queued requests that fit the free resources, awaiting a worker
    waiting_for_resources: int  # queued requests that fit the node, not its free resources now
    infeasible: int  # queued requests the node could never fit
    leases: int
    workers: tuple[tuple[str, int], ...]  # (state, count)
    workers_started: int  # since the node started
    total: tuple[tuple[str, float], ...]  # (resource, amount)
    available: tuple[tuple[str, float], ...]


@dataclass
class SchedulerConfig:
    # Idle workers kept around without a reason; above this, idle ones are stopped.
    soft_limit: int
    max_starting: int
    idle_timeout_s: float


@dataclass(slots=True)
class Bundle:
    """A placement group bundle held on this node: reserved (prepared), then committed."""

    allocation: Allocation
    resources: dict[str, float]
    attempt: int = 0
    committed: bool = False


@dataclass
class Scheduler:
    resources: NodeResources
    clock: Clock
    config: SchedulerConfig
    pending: dict[Hashable, LeaseRequest] = field(default_factory=dict)
    workers: dict[WorkerID, WorkerRecord] = field(default_factory=dict)
    leases: dict[LeaseID, Lease] = field(default_factory=dict)
    # Placement group bundles here, by (group id hex, bundle index).
    bundles: dict[tuple[str, int], Bundle] = field(default_factory=dict)
    workers_started: int = 0
    # Workers that died before registering since one last did; no start before this time.
    start_failures: int = 0
    starts_paused_until: float = 0.0

    # -- events ----------------------------------------------------------------------------
    def prestart(self, count: int) -> list[Action]:
        return [self._start_worker() for _ in range(count)]

    def request(self, req: LeaseRequest) -> list[Action]:
        self.pending[req.key] = req
        return self._schedule()

    def withdraw(self, key: Hashable) -> LeaseRequest | None:
        """Take a waiting request back (it goes to another node)."""
        return self.pending.pop(key, None)

    def cancel(self, key: Hashable, reason: str = "cancelled by the requester") -> list[Action]:
        req = self.pending.pop(key, None)
        return [Reject(req, reason)] if req is not None else []

    def return_lease(self, lease_id: LeaseID, kill: bool, reason: str = BROKEN_LEASE_REASON) -> list[Action]:
        lease = self.leases.pop(lease_id, None)
        if lease is None:
            return []  # already released (the worker died first)
        self.resources.release(lease.allocation)
        worker = self.workers.get(lease.worker_id)
        actions: list[Action] = []
        if worker is not None and worker.state != "dead":
            worker.lease = None
            worker.blocked = False
            if kill:
                worker.state = "dead"
                actions.append(StopWorker(worker.worker_id, reason))
            else:
                worker.state = "idle"
                worker.idle_since = self.clock.monotonic()
        return actions + self._schedule()

    def worker_registered(self, worker_id: WorkerID) -> list[Action]:
        worker = self.workers.get(worker_id)
        if worker is None or worker.state != "starting":
            return []
        worker.state = "idle"
        worker.idle_since = self.clock.monotonic()
        self.start_failures = 0
        return self._schedule()

    def worker_died(self, worker_id: WorkerID) -> tuple[Lease | None, list[Action]]:
        """The worker's process is gone; returns the lease it held, if any."""
        worker = self.workers.pop(worker_id, None)
        if worker is None:
            return None, []
        failed = self._start_failed(worker_id) if worker.state == "starting" else []
        lease = worker.lease
        if lease is not None and self.leases.pop(lease.lease_id, None) is not None:
            self.resources.release(lease.allocation)
        worker.state = "dead"
        return lease, failed + self._schedule()

    def _start_failed(self, worker_id: WorkerID) -> list[Action]:
        self.start_failures += 1
        beyond = self.start_failures - START_FAILURES_BEFORE_PAUSE
        if beyond < 0:
            return []
        pause = min(START_PAUSE_S * 2**beyond, START_PAUSE_MAX_S)
        self.starts_paused_until = self.clock.monotonic() + pause
        jobs = tuple(dict.fromkeys(req.job_id for req in self.pending.values()))
        return [WorkersFailToStart(worker_id, self.start_failures, pause, jobs)]

    def client_gone(self, client: Hashable) -> list[Action]:
        """A requester disconnected: drop its requests and reclaim the workers it leased."""
        for key in [k for k, r in self.pending.items() if r.client == client]:
            del self.pending[key]
        actions: list[Action] = []
        for lease in [lease for lease in self.leases.values() if lease.client == client]:
            # Its tasks have no owner to report to any more: stop the worker.
            actions += self.return_lease(lease.lease_id, kill=True)
        return actions + self._schedule()

    def job_finished(self, job_id: JobID, spare_client: Hashable | None = None) -> list[Action]:
        """Stop the job's workers, except those leased by ``spare_client`` (the gcs, whose
        actors may outlive their job: it ends the others itself)."""
        actions: list[Action] = []
        for worker in self.workers.values():
            if worker.lease is not None and spare_client is not None and worker.lease.client == spare_client:
                continue
            if worker.job_id == job_id and worker.state in ("idle", "leased"):
                if worker.lease is not None:
                    self.leases.pop(worker.lease.lease_id, None)
                    self.resources.release(worker.lease.allocation)
                    worker.lease = None
                worker.state = "dead"
                actions.append(StopWorker(worker.worker_id, f"job {job_id.hex()} finished"))
        for key in [k for k, r in self.pending.items() if r.job_id == job_id and r.client != spare_client]:
            actions.append(Reject(self.pending.pop(key), "the job finished"))
        return actions + self._schedule()

    def set_blocked(self, worker_id: WorkerID, blocked: bool) -> list[Action]:
        worker = self.workers.get(worker_id)
        if worker is None or worker.lease is None or worker.blocked == blocked:
            return []
        worker.blocked = blocked
        if blocked:
            self.resources.lend_cpu(worker.lease.allocation)
        else:
            self.resources.reclaim_cpu(worker.lease.allocation)
        return self._schedule()

    def tick(self) -> list[Action]:
        """Stop idle workers beyond the soft limit that have idled too long; start workers
        again once a pause after failed starts is over."""
        now = self.clock.monotonic()
        actions: list[Action] = []
        if self.starts_paused_until and now >= self.starts_paused_until:
            self.starts_paused_until = 0.0
            actions += self._schedule()
        alive = [w for w in self.workers.values() if w.state != "dead"]
        excess = len(alive) - self.config.soft_limit
        if excess <= 0:
            return actions
        idle = sorted((w for w in alive if w.state == "idle"), key=lambda w: w.idle_since)
        for worker in idle[:excess]:
            if now - worker.idle_since >= self.config.idle_timeout_s:
                worker.state = "reaping"
                actions.append(ReapWorker(worker.worker_id, "idle above the node's worker limit"))
        return actions

    def reap_refused(self, worker_id: WorkerID) -> list[Action]:
        """The worker still owns objects in use: it stays, idle, and is asked again later."""
        worker = self.workers.get(worker_id)
        if worker is None or worker.state != "reaping":
            return []
        worker.state = "idle"
        worker.idle_since = self.clock.monotonic()
        return self._schedule()

    # -- placement group bundles ----------------------------------------------------------
    def prepare_bundles(self, pg: str, bundles: list[tuple[int, dict[str, float]]], attempt: int = 0) -> bool:
        """Reserve every bundle's resources now, or none of them (phase one)."""
        reserved: list[tuple[tuple[str, int], Bundle]] = []
        for index, amounts in bundles:
            held = self.bundles.get((pg, index))
            if held is not None:
                if not held.committed:
                    held.attempt = attempt  # an older attempt's reservation serves this one
                continue
            allocation = self.resources.allocate(to_unit_map(amounts))
            if allocation is None:
                for _key, bundle in reserved:
                    self.resources.release(bundle.allocation)
                return False
            reserved.append(((pg, index), Bundle(allocation, dict(amounts), attempt)))
        self.bundles.update(reserved)
        return True

    def commit_bundles(self, pg: str, indices: list[int], attempt: int = 0) -> list[Action]:
        """The whole group is reserved: its bundles become resources work can ask for."""
        for index in indices:
            bundle = self.bundles.get((pg, index))
            if bundle is not None and not bundle.committed and bundle.attempt == attempt:
                bundle.committed = True
                self.resources.add_capacity(bundle_capacity(pg, index, bundle.resources))
        return self._schedule()

    def release_bundles(self, pg: str, indices: list[int] | None, attempt: int | None = None) -> list[Action]:
        """Give bundles back (with ``attempt``: only the uncommitted ones that attempt
        reserved, a rollback that must not undo a newer reservation); work holding the
        group's resources here is stopped first."""
        keys = [
            k
            for k, b in self.bundles.items()
            if k[0] == pg
            and (indices is None or k[1] in indices)
            and (attempt is None or (b.attempt == attempt and not b.committed))
        ]
        if not keys:
            return []
        actions: list[Action] = []
        committed = any(self.bundles[k].committed for k in keys)
        users = [
            lease for lease in self.leases.values() if any(in_group(n, pg) for n in lease.allocation.units)
        ]
        for lease in users if committed else []:
            actions += self.return_lease(lease.lease_id, kill=True, reason="its placement group was removed")
        for key in keys:
            bundle = self.bundles.pop(key)
            if bundle.committed:
                self.resources.remove_capacity(bundle_capacity(pg, key[1], bundle.resources))
            self.resources.release(bundle.allocation)
        return actions + self._schedule()

    def bundle_devices(self, units: dict[str, int]) -> dict[str, list[str]]:
        """Device ids (GPUs) of the committed bundles a lease draws group resources from:
        work in a GPU bundle sees that bundle's devices (one bundle's, or, for "any
        bundle", those of the group's bundles on this node)."""
        found: dict[str, list[str]] = {}
        for name in units:
            parts = split_group_resource(name)
            if parts is None or parts[0] not in INSTANCE_RESOURCES:
                continue
            device, index, pg = parts
            keys = [(pg, index)] if index is not None else [k for k in self.bundles if k[0] == pg]
            for key in keys:
                bundle = self.bundles.get(key)
                if bundle is None or not bundle.committed:
                    continue
                ids = found.setdefault(device, [])
                for device_index, _part in bundle.allocation.instances.get(device, []):
                    if str(device_index) not in ids:
                        ids.append(str(device_index))
        return found

    # -- queries ----------------------------------------------------------------------------
    def statistics(self) -> SchedulerStats:
        reasons = {"infeasible": 0, "workers": 0, "resources": 0}
        free = dict(self.resources.available)  # as _schedule hands it out, in queue order
        for req in self.pending.values():
            if req.reported_infeasible:
                reasons["infeasible"] += 1
            elif all(free.get(n, 0) >= u for n, u in req.need.items()):
                for n, u in req.units.items():
                    free[n] = free.get(n, 0) - u
                reasons["workers"] += 1
            else:
                reasons["resources"] += 1
        states: dict[str, int] = {}
        for worker in self.workers.values():
            states[worker.state] = states.get(worker.state, 0) + 1
        return SchedulerStats(
            reasons["workers"],
            reasons["resources"],
            reasons["infeasible"],
            len(self.leases),
            tuple(sorted(states.items())),
            self.workers_started,
            tuple(sorted(self.resources.total_amounts().items())),
            tuple(sorted(self.resources.available_amounts().items())),
        )

    def pending_shapes(self) -> tuple[list[Demand], list[Demand]]:
        """(resources, label selector) of the requests waiting here, and of those no node fits."""
        pending: list[Demand] = []
        infeasible: list[Demand] = []
        for req in self.pending.values():
            demand = (from_unit_map(req.units), hard_labels(req.strategy))
            (infeasible if req.reported_infeasible else pending).append(demand)
        return pending, infeasible

    def lease_of_worker(self, worker_id: WorkerID) -> Lease | None:
        worker = self.workers.get(worker_id)
        return worker.lease if worker is not None else None

    # -- the decision --------------------------------------------------------------------------
    def _schedule(self) -> list[Action]:
        actions: list[Action] = []
        # Requests that could run now but lack a worker, per runtime environment.
        unserved = 0
        virtual = dict(self.resources.available)
        for req in list(self.pending.values()):
            need = req.need
            if not self.resources.is_feasible(need):
                if not req.reported_infeasible:
                    req.reported_infeasible = True
                    actions.append(ReportInfeasible(req, self.resources.shortfall(need)))
                continue
            if req.reported_infeasible:
                req.reported_infeasible = False  # resources grew (e.g. a reconfigured node)
            if not self.resources.fits(need):
                continue
            worker = self._idle_worker(req.job_id, req.env_key)
            if worker is None:
                if all(virtual.get(n, 0) >= u for n, u in need.items()):
                    for n, u in req.units.items():
                        virtual[n] = virtual.get(n, 0) - u
                    unserved += 1
                continue
            allocation = self.resources.allocate(req.units)
            assert allocation is not None  # fits() held for a superset
            for n, u in req.units.items():
                virtual[n] = virtual.get(n, 0) - u
            lease = Lease(
                LeaseID.from_random(), worker.worker_id, req.client, allocation, self.clock.monotonic()
            )
            worker.state = "leased"
            worker.job_id = req.job_id
            worker.env_key = req.env_key
            worker.lease = lease
            self.leases[lease.lease_id] = lease
            del self.pending[req.key]
            actions.append(Grant(req, lease))
        if self.starts_paused_until:
            return actions  # workers failed to start: none until the pause is over (tick)
        starting = sum(1 for w in self.workers.values() if w.state == "starting")
        to_start = min(unserved - starting, self.config.max_starting - starting)
        for _ in range(max(to_start, 0)):
            actions.append(self._start_worker())
        return actions

    def _idle_worker(self, job_id: JobID, env_key: str) -> WorkerRecord | None:
        fresh = None
        for worker in self.workers.values():
            if worker.state != "idle":
                continue
            if worker.job_id == job_id and worker.env_key == env_key:
                return worker
            if fresh is None and worker.job_id is None:
                fresh = worker
        return fresh

    def _start_worker(self) -> StartWorker:
        worker_id = WorkerID.from_random()
        self.workers_started += 1
        self.workers[worker_id] = WorkerRecord(worker_id)
        return StartWorker(worker_id)
