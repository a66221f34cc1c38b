"""The node daemon's I/O shell: RPC, the worker template, log tailing, store files.

Decisions are the scheduler's (``scheduler.py``); this module turns RPC messages and
process events into scheduler events and carries out the actions it returns.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from manta._private.common.aio import spawn
from manta._private.common.clock import SystemClock
from manta._private.common.config import Config
from manta._private.common.ids import JobID, NodeID, ObjectID, WorkerID
from manta._private.common.placement import NodeEntry, check_strategy
from manta._private.common.resources import NodeResources, from_unit_map, to_unit_map, validate_request
from manta._private.common.session import (
    LOGS_DIR,
    log_paths,
    remove_socket_dir_if_empty,
    remove_worker_socket,
    socket_path,
    worker_log_name,
)
from manta._private.node.cluster_view import ClusterView
from manta._private.node.lease_desk import LeaseDesk
from manta._private.node.log_access import LogAccess
from manta._private.node.log_monitor import LogMonitor, LogOutbox
from manta._private.node.membership import GcsMembership
from manta._private.node.memory_monitor import (
    KillForMemory,
    MemoryMonitor,
    MemoryReader,
    MonitorConfig,
    NothingToKill,
    RunningWorker,
    process_rss,
)
from manta._private.node.metrics import NodeMetrics
from manta._private.node.runtime_envs import RuntimeEnvRecords
from manta._private.node.scheduler import (
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
from manta._private.node.store_service import StoreService
from manta._private.node.template_launch import Launched
from manta._private.node.transfer import TransferFailed, Transfers
from manta._private.node.worker_processes import (
    ExitExplained,
    WorkerProc,
    WorkerProcesses,
    died_text,
    worker_row,
)
from manta._private.rpc import messages as m
from manta._private.rpc.auth import cluster_only
from manta._private.rpc.connection_pool import ConnectionPool
from manta._private.rpc.endpoints import RpcServer
from manta._private.rpc.latency import LatencyHistogram, TimedDispatcher
from manta._private.rpc.transport import Connection, ConnectionLost

logger = logging.getLogger(__name__)

_GCS_CLIENT = "gcs"
_STATE_NAMES = {"created": "being written", "sealed": "in memory", "spilled": "spilled"}


@dataclass
class NodeParams:
    session_dir: str
    gcs_address: str
    host: str
    port: int
    resources: dict[str, float]
    labels: dict[str, str]
    is_head: bool
    token: bytes
    config: Config
    node_id: NodeID = field(default_factory=NodeID.from_random)


class NodeService:
    def __init__(self, params: NodeParams, template: Launched | None = None) -> None:
        self.params = params
        self.config = params.config
        self.node_id = params.node_id
        self.clock = SystemClock()
        cpus = int(params.resources.get("CPU", 1))
        self.scheduler = Scheduler(
            NodeResources(params.resources),
            self.clock,
            SchedulerConfig(
                soft_limit=max(cpus, 1),
                max_starting=self.config.max_starting_workers,
                idle_timeout_s=self.config.idle_worker_timeout_s,
            ),
        )
        self.dispatcher = TimedDispatcher(LatencyHistogram())
        self.server = RpcServer(
            self.dispatcher,
            cluster_only(params.token),
            max_frame_bytes=self.config.max_frame_bytes,
            on_disconnect=self._on_disconnect,
        )
        self.logs = LogMonitor()
        self._log_outbox = LogOutbox()
        self.port = 0
        self.unix = socket_path(params.session_dir, "node")
        self.workers = WorkerProcesses(
            params.session_dir, self._worker_started, self._worker_exited, self._template_lost, template
        )
        self._conn_worker: dict[Connection, WorkerID] = {}
        self.objects: StoreService | None = None
        self.transfers: Transfers | None = None
        # Connections to other nodes' daemons (pulls, forwarded frees).
        self.peers = ConnectionPool(
            params.token,
            self.dispatcher,
            kind="node",
            ident=bytes(self.node_id),
            max_frame_bytes=self.config.max_frame_bytes,
        )
        self._driver_jobs: dict[Connection, set[JobID]] = {}
        self.cluster = ClusterView(
            NodeEntry(params.node_id, "", dict(params.resources), dict(params.resources), dict(params.labels))
        )
        self.leases = LeaseDesk(self.scheduler, self.cluster, self._execute, self._schedule_heartbeat)
        self.memory = MemoryMonitor(
            MonitorConfig(self.config.memory_usage_threshold),
            self.clock,
            f"{self.node_id.hex()[:8]} ({params.host})",
        )
        self._memory_reader = MemoryReader()
        self.runtime_envs = RuntimeEnvRecords()
        self.metrics = self._metrics()
        self._stopping = False
        self.membership = self._membership()
        self.stopped = asyncio.Event()
        self._register_handlers()
        self.dispatcher.time_handlers()  # once every handler is in (see rpc/latency.py)

    def _metrics(self) -> NodeMetrics:
        p = self.params
        return NodeMetrics(
            self.node_id,
            p.host,
            p.session_dir,
            self.scheduler,
            self.memory,
            lambda: self.objects,
            self.dispatcher.histogram,
        )

    def _membership(self) -> GcsMembership:
        return GcsMembership(
            gcs_address=self.params.gcs_address,
            token=self.params.token,
            node_id=self.node_id,
            config=self.config,
            dispatcher=self.dispatcher,
            cluster=self.cluster,
            info=self.info,
            heartbeat=self._heartbeat_message,
            # Lease requests the old gcs made (for actors) have nobody to answer to: the
            # new gcs asks again for what it still needs.
            on_lost=lambda conn: self.leases.requester_gone(conn, _GCS_CLIENT),
            stop_node=self.stop,
        )

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        capacity = int(self.params.resources.get("object_store_memory", 0)) or 64 * 1024 * 1024
        self.objects = StoreService(self.config, capacity, self.params.session_dir, self.clock)
        if self.objects.warning:
            logger.warning(self.objects.warning)
        self.transfers = Transfers(
            self.objects, self.peers, self.config.max_concurrent_pulls, self.params.host, self.clock
        )
        await self.transfers.start()
        await self.server.listen_unix(self.unix)
        self.port = await self.server.listen_tcp(self.params.host, self.params.port)
        await self.workers.start_template(self._worker_params())
        try:
            await self.membership.join(self.config.gcs_reconnect_timeout_s)
        except BaseException:
            await self.stop()  # refused or unreachable: nothing half-started stays (its arena)
            raise
        self._execute(self.scheduler.prestart(int(self.params.resources.get("CPU", 0))))
        self.store.preallocate(0)  # the first pages, in the background, before the first put
        loop = asyncio.get_running_loop()
        self.membership.start_heartbeats()
        loop.call_later(self.config.log_poll_interval_s, self._log_loop)
        loop.call_later(1.0, self._tick_loop)
        if self.config.memory_monitor_refresh_ms > 0:
            loop.call_later(self.config.memory_monitor_refresh_ms / 1000, self._memory_loop)

    def info(self) -> m.NodeInfo:
        p = self.params
        return m.NodeInfo(
            self.node_id,
            p.host,
            self.port,
            self.unix,
            socket.gethostname(),
            self.store.arena.path,
            p.session_dir,
            p.resources,
            p.labels,
            p.is_head,
            os.getpid(),
        )

    async def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        self.leases.close()
        self.server.close()
        self.workers.stop_all()
        for conn in self._driver_jobs:  # drivers attached here end with their node
            if conn in self._conn_worker:
                remove_worker_socket(self.params.session_dir, self._conn_worker[conn].hex())
        self._publish_logs(self.logs.poll())
        self.membership.close()
        self.peers.close()
        if self.transfers is not None:
            self.transfers.close()
        if self.objects is not None:
            self.objects.close()
        remove_socket_dir_if_empty(self.params.session_dir)
        self.stopped.set()

    # -- worker processes -------------------------------------------------------------------
    def _worker_params(self) -> dict[str, Any]:
        """What the worker template (and every worker forked from it) is started with."""
        p = self.params
        return {
            "session_dir": p.session_dir,
            "node_id": self.node_id.hex(),
            "node_address": "unix:" + self.unix,
            "gcs_address": p.gcs_address,
            "arena_path": self.store.arena.path,
            "host": p.host,
            "config": self.config.to_dict(),
        }

    def _worker_started(self, worker_id: WorkerID, pid: int) -> None:
        out, err = log_paths(self.params.session_dir, worker_log_name(worker_id.hex()))
        self.logs.add(worker_id, pid, out, err)

    def _worker_exited(self, proc: WorkerProc, explained: ExitExplained) -> None:
        self.memory.worker_exited(proc.worker_id)
        reason = explained.exit.reason
        # The gcs restarts the actor it hosted and ends the actors it owned. (An actor's
        # death cause is rendered as a clause: no full stop of its own.)
        self.membership.notify(m.WorkerDied(proc.worker_id, self.node_id, reason.rstrip(".")), keep=True)
        if explained.tell_driver and proc.running_job is not None:
            self._push_error(proc.running_job, "worker_died", died_text(proc, explained.exit.pid, reason))
        self._worker_gone(proc.worker_id)

    def _template_lost(self) -> None:
        if not self._stopping:
            logger.error("the worker template exited; stopping this node")
            spawn(self.stop(), "stopping the node")

    def _push_error(self, job_id: JobID, kind: str, text: str) -> None:
        """Tell the job's driver (Ray's error push; its driver prints it)."""
        self.membership.notify(m.ErrorPush(job_id, kind, text, time.time()), keep=True)

    def _worker_gone(self, worker_id: WorkerID) -> None:
        self._publish_logs(self.logs.remove(worker_id))
        _lease, actions = self.scheduler.worker_died(worker_id)
        self._execute(actions)
        self._schedule_heartbeat()

    # -- actions ------------------------------------------------------------------------------
    def _execute(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Grant):
                self._grant(action)
            elif isinstance(action, StartWorker):
                self.workers.fork(action.worker_id)
            elif isinstance(action, StopWorker):
                self.workers.stop(action.worker_id, action.reason)
            elif isinstance(action, ReapWorker):
                spawn(self._reap(action), "reaping an idle worker")
            elif isinstance(action, Reject):
                self.leases.reply(action.request.key, m.LeaseCancelled(action.reason))
            elif isinstance(action, ReportInfeasible):
                self._report_infeasible(action)
            elif isinstance(action, WorkersFailToStart):
                self._workers_fail_to_start(action)
        if actions:
            self._schedule_heartbeat()

    def _workers_fail_to_start(self, action: WorkersFailToStart) -> None:
        """Say why no worker starts here, in the node's log and to the jobs that wait."""
        proc = self.workers.procs.get(action.worker_id)
        why = proc.exit.reason if proc is not None and proc.exit is not None else "it exited"
        _, err = log_paths(self.params.session_dir, worker_log_name(action.worker_id.hex()))
        text = (
            f"{action.failures} workers in a row exited before they started on node "
            f"{self.node_id.hex()[:8]} (the last: {why}; its log: {err}); starting workers "
            f"there again in {action.pause_s:g} s."
        )
        logger.error("%s", text)
        for job_id in action.job_ids:
            self._push_error(job_id, "worker_died", text)

    def _grant(self, action: Grant) -> None:
        req, lease = action.request, action.lease
        fut = self.leases.take(req.key)
        proc = self.workers.procs.get(lease.worker_id)
        if fut is None or fut.done() or proc is None or proc.conn is None:
            self._execute(self.scheduler.return_lease(lease.lease_id, kill=False))
            return
        worker_address: m.Address = proc.conn.peer_info["address"]
        self.logs.set_job(lease.worker_id, req.job_id)
        proc.running_job = req.job_id
        devices = lease.allocation.instance_ids()
        if self.scheduler.bundles:
            for name, ids in self.scheduler.bundle_devices(lease.allocation.units).items():
                devices.setdefault(name, ids)  # in a placement group bundle: its devices
        fut.set_result(
            m.LeaseGrant(
                lease.lease_id,
                lease.worker_id,
                worker_address,
                lease.allocation.amounts(),
                devices,
            )
        )

    def _report_infeasible(self, action: ReportInfeasible) -> None:
        conn = self.leases.requester(action.request.key)
        if conn is None:
            return
        short = ", ".join(
            f"{name}: needs {need:g}, this node has {have:g}"
            for name, (need, have) in action.shortfall.items()
        )
        requested = {k: v for k, v in from_unit_map(action.request.units).items()}
        text = (
            f"A task or actor needs {requested}, which no node in the cluster can provide "
            f"({short}). It stays pending until a node that fits joins the cluster; "
            f"`manta status` lists it as infeasible."
        )
        nonce = action.request.key[1]  # type: ignore[index]
        conn.notify(m.LeaseInfeasible(nonce, requested, text))

    async def _reap(self, action: ReapWorker) -> None:
        if not await self.workers.reap(action.worker_id, action.reason):
            self._execute(self.scheduler.reap_refused(action.worker_id))

    # -- RPC handlers -------------------------------------------------------------------------------
    def _register_handlers(self) -> None:
        d = self.dispatcher
        d.register(m.RegisterWorker, self._h_register_worker)
        # Its processes' task events go on to the gcs as they came (see core_worker/task_events.py).
        d.register(m.TaskEventBatch, lambda c, msg: self.membership.notify(msg))
        d.register(m.RequestLease, self._h_request_lease)
        d.register(m.CancelLeaseRequest, self._h_cancel_request)
        d.register(m.ReturnLease, self._h_return_lease)
        d.register(m.WorkerBlocked, lambda c, _m: self._set_blocked(c, True))
        d.register(m.WorkerUnblocked, lambda c, _m: self._set_blocked(c, False))
        d.register(m.CreateObject, lambda c, msg: self.store.create(c, msg))
        d.register(m.SealObject, lambda c, msg: self.store.seal(c, msg))
        d.register(m.AbortObject, lambda c, msg: self.store.abort(c, msg))
        d.register(m.PinObject, self._h_pin)
        d.register(m.UnpinObjects, lambda c, msg: self.store.unpin(c, msg))
        d.register(m.FreeObjects, self._h_free)
        d.register(m.PinForTransfer, lambda c, msg: self.transfer.pin_for_transfer(c, msg))
        d.register(m.PrepareBundles, self._h_prepare_bundles)
        d.register(m.CommitBundles, self._h_commit_bundles)
        d.register(m.ReleaseBundles, self._h_release_bundles)
        d.register(m.KillWorker, self._h_kill_worker)
        d.register(m.GetWorkerExit, self._h_get_worker_exit)
        d.register(m.GetNodeStats, lambda c, msg: self.statistics())
        d.register(m.FlushLogs, self._h_flush_logs)
        d.register(m.GetMemoryReport, self._h_memory_report)
        d.register(m.ReportMetrics, lambda c, msg: self.metrics.report(self._conn_worker.get(c), msg))
        d.register(m.GetMetrics, lambda c, msg: self.metrics.exposition())
        d.register(m.ListWorkers, lambda c, msg: self.worker_rows())
        d.register(m.RuntimeEnvReport, self._h_runtime_env_report)
        d.register(m.ListRuntimeEnvs, lambda c, msg: self.runtime_envs.rows(self._worker_alive))
        d.register(m.Published, self._h_published)
        procs = self.workers.procs
        LogAccess(
            self.node_id,
            os.path.join(self.params.session_dir, LOGS_DIR),
            lambda: ((p.worker_id.hex(), p.pid) for p in procs.values() if p.pid),
        ).register(d)

    def _h_register_worker(self, conn: Connection, msg: m.RegisterWorker) -> None:
        self._conn_worker[conn] = msg.worker_id
        conn.peer_info["address"] = msg.address
        proc = self.workers.procs.get(msg.worker_id)
        if proc is None:
            if conn.peer_kind != "driver":
                raise ValueError(f"unknown worker {msg.worker_id.hex()}")
            self._driver_jobs.setdefault(conn, set())
            return
        proc.conn = conn
        self._execute(self.scheduler.worker_registered(msg.worker_id))

    def _h_request_lease(self, conn: Connection, msg: m.RequestLease) -> Any:
        resources = dict(msg.resources)
        validate_request(resources, "lease request")
        check_strategy(msg.strategy)
        place = None
        if msg.placement is not None:
            validate_request(msg.placement, "lease placement")
            place = to_unit_map(msg.placement)
        req = LeaseRequest(
            (id(conn), msg.nonce),
            _GCS_CLIENT if conn is self.membership.conn else id(conn),
            msg.job_id,
            to_unit_map(resources),
            msg.runtime_env_key,
            place=place,
            strategy=msg.strategy,
        )
        if conn in self._driver_jobs:
            self._driver_jobs[conn].add(msg.job_id)
        return self.leases.request(conn, req, msg.strategy, msg.spilled, msg.locality)

    def _h_cancel_request(self, conn: Connection, msg: m.CancelLeaseRequest) -> None:
        self.leases.cancel((id(conn), msg.nonce))

    def _h_prepare_bundles(self, conn: Connection, msg: m.PrepareBundles) -> bool:
        bundles = []
        for index, amounts in msg.bundles:
            if not isinstance(index, int) or not isinstance(amounts, dict):
                raise ValueError("bundles are [index, resources] pairs")
            validate_request(amounts, "placement group bundle")
            bundles.append((index, dict(amounts)))
        ok = self.scheduler.prepare_bundles(msg.pg_id.hex(), bundles, msg.attempt)
        self._schedule_heartbeat()
        return ok

    def _h_commit_bundles(self, conn: Connection, msg: m.CommitBundles) -> None:
        self._execute(self.scheduler.commit_bundles(msg.pg_id.hex(), list(msg.indices), msg.attempt))
        self._bundles_changed()  # the cluster learns of the group's resources at once
        self.leases.schedule_rebalance(delay=0)  # work parked here waiting for them is placed now

    def _h_release_bundles(self, conn: Connection, msg: m.ReleaseBundles) -> None:
        indices = None if msg.indices is None else list(msg.indices)
        self._execute(self.scheduler.release_bundles(msg.pg_id.hex(), indices, msg.attempt))
        self._bundles_changed()

    def _bundles_changed(self) -> None:
        """This node's totals changed (group resources came or went): its own placement
        view and, at once, the cluster's."""
        self.cluster.local.total = self.scheduler.resources.total_amounts()
        self._send_heartbeat()

    def _h_return_lease(self, conn: Connection, msg: m.ReturnLease) -> None:
        lease = self.scheduler.leases.get(msg.lease_id)
        proc = self.workers.procs.get(lease.worker_id) if lease is not None else None
        if proc is not None and not msg.kill_worker:
            proc.running_job = None  # back in the pool: a later end is not under a task
        self._execute(self.scheduler.return_lease(msg.lease_id, msg.kill_worker))
        self._schedule_heartbeat()

    def _set_blocked(self, conn: Connection, blocked: bool) -> None:
        worker_id = self._conn_worker.get(conn)
        if worker_id is not None:
            self._execute(self.scheduler.set_blocked(worker_id, blocked))
            self._schedule_heartbeat()

    def _h_kill_worker(self, conn: Connection, msg: m.KillWorker) -> bool:
        return self.workers.kill(msg.worker_id, msg.reason)

    async def _h_get_worker_exit(self, conn: Connection, msg: m.GetWorkerExit) -> m.WorkerExit | None:
        return await self.workers.exit_report(msg.worker_id)

    @property
    def store(self) -> StoreService:
        assert self.objects is not None, "the object store starts with the node"
        return self.objects

    @property
    def transfer(self) -> Transfers:
        assert self.transfers is not None, "transfers start with the node"
        return self.transfers

    async def _h_pin(self, conn: Connection, msg: m.PinObject) -> m.ObjectLocation | None:
        """Pin an object for a local reader, pulling it from ``msg.source`` first if it is
        not here. None: it is not to be had (the reader's owner rebuilds it)."""
        location = await self.store.pin(conn, msg)
        if location is not None or msg.source is None or msg.source == self.node_id:
            return location
        source = self.cluster.nodes.get(msg.source)
        if source is None or not source.alive:
            return None
        for _attempt in range(3):  # a fresh copy can be evicted before we pin it
            try:
                await self.transfer.pull(msg.object_id, source.address)
            except TransferFailed as e:
                logger.info("cannot pull object %s: %s", msg.object_id.hex(), e)
                return None
            location = await self.store.pin(conn, msg)
            if location is not None:
                return location
        return None

    def _h_free(self, conn: Connection, msg: m.FreeObjects) -> None:
        if msg.node_id is not None and msg.node_id != self.node_id:
            node = self.cluster.nodes.get(msg.node_id)
            if node is not None and node.alive:
                spawn(self._forward_free(node.address, msg.object_ids), "forwarding a free")
            return
        self.store.free(msg.object_ids)
        self.transfer.freed(msg.object_ids)

    async def _forward_free(self, address: str, object_ids: list[ObjectID]) -> None:
        try:
            (await self.peers.get(address)).notify(m.FreeObjects(object_ids))
        except ConnectionLost:
            pass  # that node is gone, and its store with it

    def statistics(self) -> m.NodeStats:
        store = self.store.statistics()
        return m.NodeStats(
            node_id=self.node_id,
            workers={
                w.worker_id.hex(): [
                    w.state,
                    self.workers.procs[w.worker_id].pid if w.worker_id in self.workers.procs else 0,
                ]
                for w in self.scheduler.workers.values()
            },
            pending_leases=len(self.scheduler.pending),
            objects=store.num_objects,
            object_bytes=store.used_bytes,
            spilled_bytes=store.spilled_bytes,
            available=self._reported_available(),
        )

    def _h_runtime_env_report(self, conn: Connection, msg: m.RuntimeEnvReport) -> None:
        worker_id = self._conn_worker.get(conn)
        who = None if worker_id is None else bytes(worker_id)
        self.runtime_envs.report(who, msg.key, msg.runtime_env, msg.success, msg.error, msg.started_ms)

    def _worker_alive(self, worker_id: bytes) -> bool:
        proc = self.workers.procs.get(WorkerID(worker_id))
        return proc is not None and proc.exit is None

    def worker_rows(self) -> list[list[Any]]:
        """This node's workers (running and recently ended) and attached drivers, as rows
        of ``worker_processes.WORKER_ROW``."""
        rows = [worker_row(proc) for proc in self.workers.procs.values() if proc.pid]
        for conn in self._driver_jobs:
            address = conn.peer_info.get("address")
            if address is not None:
                rows.append([bytes(address.worker_id).hex(), True, True, address.pid, None, "", 0, 0, 0])
        return rows

    async def _h_memory_report(self, conn: Connection, msg: m.GetMemoryReport) -> m.MemoryReport:
        stats = self.store.statistics()
        objects = [
            m.StoreObject(
                info.object_id,
                info.size,
                info.owner,
                "spilling" if info.spilling else _STATE_NAMES[info.state.value],
                info.pins,
                info.spill_path or "",
            )
            for info in self.store.store.infos()
        ]

        async def ask(worker_conn: Connection, worker_id: WorkerID) -> m.ProcessReferences | None:
            try:
                refs = await asyncio.wait_for(worker_conn.call(m.GetReferences()), 5.0)
            except Exception:
                return None  # busy or gone: the report says what it could learn
            address = worker_conn.peer_info.get("address")
            pid = address.pid if isinstance(address, m.Address) else 0
            return m.ProcessReferences(worker_id, pid, worker_conn.peer_kind == "driver", refs)

        answers = await asyncio.gather(*(ask(c, w) for c, w in list(self._conn_worker.items())))
        return m.MemoryReport(
            self.node_id,
            self.params.host,
            stats.capacity,
            stats.used_bytes,
            stats.spilled_bytes,
            objects,
            [a for a in answers if a is not None],
        )

    async def _h_flush_logs(self, conn: Connection, msg: m.FlushLogs) -> None:
        self._publish_logs(self.logs.poll())
        gcs = self.membership.conn
        if gcs is not None and not gcs.closed:
            # The gcs handles this connection's messages in order: when it answers, it has
            # relayed every log batch sent above.
            await asyncio.wait_for(gcs.call(m.Ping()), 5.0)

    def _gcs_client(self) -> str:
        """The gcs as a lease holder (it holds the leases of actors): one name across its
        connections, so that its leases outlive a gcs restart."""
        return _GCS_CLIENT

    def _h_published(self, conn: Connection, msg: m.Published) -> None:
        if msg.channel == "jobs" and isinstance(msg.payload, m.JobInfo) and not msg.payload.alive:
            job_id = msg.payload.job_id
            self.leases.job_finished(job_id, self._gcs_client())
            self._execute(self.scheduler.job_finished(job_id, self._gcs_client()))
        elif msg.channel == "placement_groups" and isinstance(msg.payload, m.PlacementGroupInfo):
            if msg.payload.state == "REMOVED":
                self.leases.group_removed(msg.payload.pg_id.hex())
        elif msg.channel == "worker_died" and isinstance(msg.payload, m.WorkerGone):
            if msg.payload.node_id != self.node_id:
                self.store.owner_gone(msg.payload.worker_id)  # its objects' copies here go too
        elif msg.channel in ("nodes", "resources") and isinstance(msg.payload, m.NodeState):
            if not msg.payload.alive:
                self.transfer.source_died(f"{msg.payload.info.host}:{msg.payload.info.port}")
            if self.cluster.update(msg.payload) and not self._stopping:
                self.leases.schedule_rebalance()

    def _on_disconnect(self, conn: Connection) -> None:
        if self._stopping:
            return
        worker_id = self._conn_worker.pop(conn, None)
        # Its pins go and what it was still writing is aborted: no half-written object stays.
        self.store.client_gone(conn)
        self.transfer.peer_gone(conn)
        self._execute(self.scheduler.client_gone(id(conn)))
        self.leases.requester_gone(conn, id(conn))
        driver_jobs = self._driver_jobs.pop(conn, None)
        for job_id in driver_jobs or ():
            self._execute(self.scheduler.job_finished(job_id, self._gcs_client()))
        if worker_id is not None and driver_jobs is not None:
            remove_worker_socket(self.params.session_dir, worker_id.hex())  # a driver's (killed?)
        if worker_id is not None:
            self.metrics.worker_gone(worker_id)  # its metrics stay a while (node/user_metrics.py)
            self.store.owner_gone(worker_id)  # objects die with their owner
            proc = self.workers.procs.get(worker_id)
            if proc is not None and proc.exit is None and proc.pid:
                # The process may linger (stuck in C code); it has lost its node, so end it.
                self.workers.kill_later(proc, 1.0)

    # -- periodic work -------------------------------------------------------------------------------
    def _schedule_heartbeat(self) -> None:
        self.membership.schedule_heartbeat()

    def _send_heartbeat(self) -> None:
        self.membership.send_heartbeat()

    def _heartbeat_message(self) -> m.Heartbeat:
        pending, infeasible = self.scheduler.pending_shapes()
        infeasible += self.leases.infeasible_shapes()
        total = self.scheduler.resources.total_amounts() if self.scheduler.bundles else None
        return m.Heartbeat(
            self.node_id,
            self._reported_available(),
            [shape for shape, _ in pending],
            [shape for shape, _ in infeasible],
            total,
            [labels for _, labels in pending],
            [labels for _, labels in infeasible],
        )

    def _reported_available(self) -> dict[str, float]:
        """Free resources as drivers see them: the scheduler's, with the object store's
        free bytes (objects, not leases, use it up), as Ray reports it."""
        available = self.scheduler.resources.available_amounts()
        if "object_store_memory" in available:
            # Of the amount the node offers (the arena's capacity is that, page-aligned).
            offered = self.scheduler.resources.total_amounts()["object_store_memory"]
            # The allocator's counter, not store statistics (a pass over every object):
            # this runs at every heartbeat.
            used = self.store.store.allocator.used_bytes
            available["object_store_memory"] = float(max(offered - used, 0))
        return available

    def _log_loop(self) -> None:
        if self._stopping:
            return
        self._publish_logs(self.logs.poll())
        asyncio.get_running_loop().call_later(self.config.log_poll_interval_s, self._log_loop)

    def _publish_logs(self, chunks: list[Any]) -> None:
        outbox = self._log_outbox
        outbox.add(chunks)
        if not self.membership.connected:
            return  # kept until the gcs is back: the log loop tries again
        if outbox.dropped_lines:
            logger.warning(
                "%d lines of worker output were dropped while the gcs was away", outbox.dropped_lines
            )
            outbox.dropped_lines = 0
        for chunk in outbox.take():
            self.membership.notify(
                m.LogBatch(
                    chunk.job_id,
                    self.node_id,
                    self.params.host,
                    chunk.pid,
                    chunk.task_name,
                    chunk.is_err,
                    chunk.lines,
                )
            )

    def _tick_loop(self) -> None:
        if self._stopping:
            return
        # Armed again first: a failing tick must not stop the ones after it.
        asyncio.get_running_loop().call_later(1.0, self._tick_loop)
        self._execute(self.scheduler.tick())
        self.leases.schedule_rebalance()  # waiting requests look for room elsewhere again

    def _memory_loop(self) -> None:
        if self._stopping:
            return
        try:
            self._check_memory()
        except Exception:  # a bad reading must not end the checks (or the daemon)
            logger.exception("the memory monitor failed to check the node's memory")
        asyncio.get_running_loop().call_later(self.config.memory_monitor_refresh_ms / 1000, self._memory_loop)

    def _check_memory(self) -> None:
        # The workers (and their RSS) are only gathered when the monitor looks at them.
        decision = self.memory.decide(self._memory_reader.read(), self._running_workers())
        if isinstance(decision, NothingToKill):
            logger.warning(decision.message)
        elif isinstance(decision, KillForMemory):
            if self.workers.kill(decision.worker_id, "the node was running low on memory", decision.message):
                logger.warning(
                    "memory monitor: killed worker %s: %s", decision.worker_id.hex()[:8], decision.message
                )
            else:
                self.memory.worker_exited(decision.worker_id)  # it had ended already

    def _running_workers(self) -> Iterator[RunningWorker]:
        """The workers that hold a lease, for the memory monitor's choice."""
        for worker in self.scheduler.workers.values():
            lease = worker.lease
            proc = self.workers.procs.get(worker.worker_id)
            if lease is None or proc is None or not proc.pid or proc.exit is not None:
                continue
            # The gcs leases actors' workers; owners lease task workers. Whether a task may
            # be retried is its owner's to know: the node treats it as retriable.
            yield RunningWorker(
                worker.worker_id,
                proc.pid,
                lease.client,
                lease.granted_at,
                is_actor=lease.client == _GCS_CLIENT,
                rss=process_rss(proc.pid),
            )
