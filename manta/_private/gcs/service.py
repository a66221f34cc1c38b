"""The gcs's I/O shell: RPC handlers over the storage, node manager and subscriptions.

Never on the task hot path: it is asked about membership, jobs, exported functions and
key-value data, and fans out published events (node changes, job ends, worker logs).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from manta._private.common import task_events as te
from manta._private.common.clock import SystemClock
from manta._private.common.config import Config
from manta._private.common.ids import ActorID, JobID, NodeID, PlacementGroupID, TaskID
from manta._private.common.placement import NodeEntry, check_selector
from manta._private.common.ratelimit import RateLimitedLog
from manta._private.common.resources import check_amounts
from manta._private.gcs.access_shell import AccessService, who
from manta._private.gcs.actor_manager import NodeView
from manta._private.gcs.actor_shell import ActorDirector
from manta._private.gcs.audit import AuditLog
from manta._private.gcs.log_hold import LogHold
from manta._private.gcs.metrics import GcsMetrics
from manta._private.gcs.node_manager import NodeManager, NodeRecord
from manta._private.gcs.pg_shell import PlacementGroupDirector
from manta._private.gcs.pubsub import Subscriptions
from manta._private.gcs.storage import Storage
from manta._private.gcs.task_event_store import TaskEventStore
from manta._private.gcs.task_why import DeadWorkers, NodeResources, explain
from manta._private.rpc import codec
from manta._private.rpc import messages as m
from manta._private.rpc.endpoints import RpcServer
from manta._private.rpc.latency import LatencyHistogram, TimedDispatcher
from manta._private.rpc.transport import Connection

logger = logging.getLogger(__name__)
# Messages ignored because of who sent them: logged, but a flood cannot fill the disk.
_IGNORED = RateLimitedLog(time.monotonic)

_JOBS = "jobs"
_META = "meta"
_NODES = "nodes"


class GcsService:
    def __init__(self, storage: Storage, config: Config, token: bytes, audit_dir: str) -> None:
        self.storage = storage
        self.config = config
        self.nodes = NodeManager(SystemClock(), config.node_timeout_s)
        self.subs: Subscriptions[Connection] = Subscriptions()
        self.dispatcher = TimedDispatcher(LatencyHistogram())
        self.access = AccessService(storage, token, AuditLog(audit_dir, SystemClock()), SystemClock())
        self.server = RpcServer(
            self.dispatcher,
            self.access.verify,
            max_frame_bytes=config.max_frame_bytes,
            on_disconnect=self._on_disconnect,
            on_refused=self.access.audit.refused,
        )
        self._node_conns: dict[Connection, NodeID] = {}
        self._conn_of_node: dict[NodeID, Connection] = {}
        self._driver_jobs: dict[Connection, JobID] = {}
        self._awaiting_nodes: set[NodeID] = set()
        self._unclaimed_jobs: set[JobID] = set()
        self._held_logs: LogHold[m.LogBatch] = LogHold(config.gcs_reconnect_timeout_s)
        self._stopping = False
        self.actors = ActorDirector(
            config,
            token,
            self._conn_of_node.get,
            self._node_views,
            self._publish,
            storage,
            self.nodes.reserve,
        )
        self.pgs = PlacementGroupDirector(
            self._conn_of_node.get, self._node_entries, self._pg_removed, self._publish, storage
        )
        self.task_events = TaskEventStore(config.task_events_max_num_task_in_gcs)
        self.dead_workers = DeadWorkers()  # for explaining tasks whose owner died
        self.metrics = GcsMetrics(
            self.task_events,
            self.actors.manager.actors,
            self.pgs.manager.groups,
            self.nodes.nodes,
            self.dispatcher.histogram,
        )
        self._register_handlers()
        self.dispatcher.time_handlers()  # once every handler is in (see rpc/latency.py)

    async def start(self, host: str, port: int, unix: str | None) -> int:
        self._restore()
        if unix:
            await self.server.listen_unix(unix)
        bound = await self.server.listen_tcp(host, port)
        asyncio.get_running_loop().call_later(1.0, self._health_loop)
        return bound

    def stop(self) -> None:
        self._stopping = True
        self.server.close()
        self.storage.close()
        self.access.audit.close()

    def _restore(self) -> None:
        """Take back what a previous gcs stored (durable storage): nodes it knew get a
        health timeout's grace to reconnect, live actors are watched again."""
        states = []
        for key in self.storage.keys(_NODES):
            blob = self.storage.get(_NODES, key)
            if blob is not None:
                states.append(codec.decode(blob))
        self.nodes.restore(states)
        # Actors are placed again only once the nodes that were alive have reconnected
        # (or been declared dead): before, a partial view would misplace them.
        self._awaiting_nodes = {state.info.node_id for state in states if state.alive}
        self.actors.manager.placing_paused = bool(self._awaiting_nodes)
        actors = self.actors.restore()
        groups = self.pgs.restore()
        # Jobs whose drivers do not reconnect in time ended while the gcs was away.
        self._unclaimed_jobs = {info.job_id for info in self._all_jobs() if info.alive}
        if self._unclaimed_jobs:
            asyncio.get_running_loop().call_later(
                self.config.gcs_reconnect_timeout_s, self._end_unclaimed_jobs
            )
        if states or actors or groups:
            logger.info(
                "restored %d nodes, %d actors and %d placement groups from storage",
                len(states),
                actors,
                groups,
            )

    def _save_node(self, record: NodeRecord) -> None:
        self.storage.put(_NODES, bytes(record.info.node_id), codec.encode(self._state(record)))

    # -- publishing ------------------------------------------------------------------------------
    def _publish(self, channel: str, key: bytes, payload: Any) -> None:
        msg = m.Published(channel, key, payload)
        for conn in self.subs.subscribers(channel, key):
            if not conn.closed:
                conn.notify(msg)

    # -- handlers ---------------------------------------------------------------------------------
    def _register_handlers(self) -> None:
        d = self.dispatcher
        d.register(m.RegisterNode, self._h_register_node)
        d.register(m.UnregisterNode, self._h_unregister_node)
        d.register(m.Heartbeat, self._h_heartbeat)
        d.register(m.GetNodes, self._h_get_nodes)
        d.register(m.KvPut, self._h_kv_put)
        d.register(m.KvGet, lambda c, msg: self.storage.get("kv:" + msg.namespace, msg.key))
        d.register(m.KvDel, lambda c, msg: int(self.storage.delete("kv:" + msg.namespace, msg.key)))
        d.register(m.KvKeys, lambda c, msg: self.storage.keys("kv:" + msg.namespace, msg.prefix))
        d.register(m.RegisterJob, self._h_register_job)
        d.register(m.ReattachDriver, self._h_reattach_driver)
        d.register(m.GetJob, self._h_get_job)
        d.register(m.GetAllJobs, lambda c, msg: self._all_jobs())
        d.register(m.JobFinished, lambda c, msg: self._finish_job(msg.job_id))
        d.register(m.Subscribe, self._h_subscribe)
        d.register(m.LogBatch, self._h_logs)
        d.register(m.ErrorPush, lambda c, msg: self._publish("errors", bytes(msg.job_id), msg))
        d.register(m.Ping, lambda c, msg: None)
        d.register(
            m.TaskEventBatch,
            lambda c, msg: self.task_events.add_batch(
                msg.reporter, msg.definitions, msg.transitions, msg.dropped
            ),
        )
        d.register(m.ListTasks, self._h_list_tasks)
        d.register(m.SummarizeTasks, lambda c, msg: self.task_events.summary())
        d.register(m.TaskTimeline, lambda c, msg: self.task_events.timeline())
        d.register(m.ExplainTask, self._h_explain_task)
        d.register(m.WorkerDied, self._h_worker_died)
        d.register(m.GetMetrics, lambda c, msg: self.metrics.exposition())
        d.register(
            m.LeaseInfeasible, lambda c, msg: logger.warning("a node refused an actor lease: %s", msg.message)
        )
        self.actors.register_handlers(d)
        self.pgs.register_handlers(d)
        self.access.register_handlers(d)
        self.access.audit_named_lookups(d, self._namespace_of)

    def _namespace_of(self, conn: Connection) -> str | None:
        job_id = self._driver_jobs.get(conn)
        info = None if job_id is None else self._job(job_id)
        return None if info is None else info.namespace

    def _h_explain_task(self, conn: Connection, msg: m.ExplainTask) -> list[str]:
        if len(msg.task_id) != TaskID.SIZE:
            raise ValueError(f"a task id is {TaskID.SIZE} bytes, not {len(msg.task_id)}")
        views = [
            NodeResources(n.info.node_id.hex(), n.alive, dict(n.total or n.info.resources), dict(n.available))
            for n in self.nodes.nodes.values()
        ]

        def actor_state(actor_id: bytes) -> tuple[str, str] | None:
            info = self.actors.manager.info(ActorID(actor_id)) if len(actor_id) == ActorID.SIZE else None
            return None if info is None else (info.state, info.death_cause)

        return explain(self.task_events, msg.task_id, views, actor_state, self.dead_workers, time.time())

    def _h_worker_died(self, conn: Connection, msg: m.WorkerDied) -> None:
        how = f"died on node {msg.node_id.hex()[:12]}" + (f" ({msg.reason})" if msg.reason else "")
        self.dead_workers.add(bytes(msg.worker_id), how)
        self.actors.worker_died(msg)

    def _h_list_tasks(self, conn: Connection, msg: m.ListTasks) -> m.TaskListing:
        filters = [tuple(f) for f in msg.filters if isinstance(f, list) and len(f) == 3]
        if len(filters) != len(msg.filters):
            raise ValueError("each filter is [column, operator, value]")
        limit = min(max(msg.limit, 0), te.MAX_LIMIT)
        listing = self.task_events.query(filters, limit, msg.detail, max(msg.offset, 0))
        return m.TaskListing(listing.records, listing.total, listing.matched, listing.dropped)

    def _h_register_node(self, conn: Connection, msg: m.RegisterNode) -> None:
        known = self.nodes.nodes.get(msg.info.node_id)
        if known is not None and not known.alive:
            # It was cut off and declared dead; its tasks and actors have moved on.
            raise ValueError(
                f"node {msg.info.node_id.hex()} was declared dead ({known.death_reason}); "
                "restart it to join the cluster again"
            )
        record = self.nodes.register(msg.info)
        self._save_node(record)
        self._node_conns[conn] = msg.info.node_id
        self._conn_of_node[msg.info.node_id] = conn
        logger.info("node %s joined from %s", msg.info.node_id.hex()[:8], conn.peer)
        self.access.audit.record("node_join", **who(conn), node_id=msg.info.node_id.hex())
        self._publish("nodes", b"", self._state(record))
        self._awaiting_nodes.discard(msg.info.node_id)
        self.actors.node_registered(msg.info.node_id)
        self.pgs.node_registered(msg.info.node_id)
        self._nodes_changed()

    def _node_entries(self) -> list[NodeEntry]:
        return [NodeEntry(v.node_id, "", v.total, v.available, v.labels) for v in self._node_views()]

    def _pg_removed(self, pg_id: PlacementGroupID) -> None:
        self.actors.group_removed(pg_id.hex())

    def _node_views(self) -> list[NodeView]:
        # Only nodes connected to this gcs: after a restart, the ones still reconnecting
        # cannot be leased from yet.
        return [
            NodeView(r.info.node_id, r.total or r.info.resources, r.available, r.info.labels)
            for r in self.nodes.alive()
            if r.info.node_id in self._conn_of_node
        ]

    def _h_unregister_node(self, conn: Connection, msg: m.UnregisterNode) -> None:
        self._node_died(msg.node_id, msg.reason)

    def _h_heartbeat(self, conn: Connection, msg: m.Heartbeat) -> None:
        if self._conn_of_node.get(msg.node_id) is not conn:
            # Only a node speaks for itself: from anyone else (or before it registered)
            # a heartbeat is ignored.
            _IGNORED.log(logger, f"ignored a heartbeat for node {msg.node_id.hex()[:8]} from {conn.peer}")
            return
        check_amounts(msg.available, "heartbeat available")
        if msg.total is not None:
            check_amounts(msg.total, "heartbeat total")
        for shape in (*msg.pending, *msg.infeasible):
            check_amounts(shape, "heartbeat demand")
        for selectors in (msg.pending_labels, msg.infeasible_labels):
            for selector in selectors or ():
                check_selector(selector)
        record = self.nodes.nodes.get(msg.node_id)
        before = None if record is None else (record.available, record.total)
        accepted = self.nodes.heartbeat(
            msg.node_id,
            msg.available,
            msg.pending,
            msg.infeasible,
            msg.total,
            (msg.pending_labels, msg.infeasible_labels),
        )
        if accepted and before != (msg.available, msg.total):
            # Node daemons place leases with this view: changes reach them within a
            # heartbeat's coalescing delay (20 ms).
            assert record is not None
            self._publish("resources", b"", self._state(record))

    def _h_get_nodes(self, conn: Connection, msg: m.GetNodes) -> list[m.NodeState]:
        return [self._state(r) for r in self.nodes.nodes.values()]

    @staticmethod
    def _state(record: NodeRecord) -> m.NodeState:
        return m.NodeState(
            record.info,
            record.alive,
            record.available,
            record.death_reason,
            record.pending,
            record.infeasible,
            record.total,
            record.pending_labels,
            record.infeasible_labels,
        )

    def _h_kv_put(self, conn: Connection, msg: m.KvPut) -> bool:
        if not isinstance(msg.key, bytes) or not isinstance(msg.value, bytes):
            raise ValueError("kv keys and values must be bytes")
        return self.storage.put("kv:" + msg.namespace, msg.key, msg.value, msg.overwrite)

    def _h_register_job(self, conn: Connection, msg: m.RegisterJob) -> bytes:
        # Whatever ended in its name before (a registration whose connection dropped), the
        # driver asking is alive.
        self.dead_workers.forget(bytes(msg.driver.worker_id))
        for job_id in self._unclaimed_jobs:
            info = self._job(job_id)
            if info is not None and info.driver.worker_id == msg.driver.worker_id:
                # The previous gcs stored this driver's registration and died before its
                # answer went out: the driver asks again, and is given the job it has.
                self._driver_jobs[conn] = job_id
                self._unclaimed_jobs.discard(job_id)
                return bytes(job_id)
        raw = self.storage.get(_META, b"job_counter")
        number = int(raw or b"0") + 1
        self.storage.put(_META, b"job_counter", str(number).encode())
        job_id = JobID.from_int(number)
        info = m.JobInfo(job_id, msg.driver, msg.namespace, msg.config, True, time.time(), 0.0)
        self.storage.put(_JOBS, bytes(job_id), codec.encode(info))
        self._driver_jobs[conn] = job_id
        logger.info("job %s started by pid %s", job_id.hex(), msg.driver.pid)
        return bytes(job_id)

    def _job(self, job_id: JobID) -> m.JobInfo | None:
        raw = self.storage.get(_JOBS, bytes(job_id))
        return None if raw is None else codec.decode(raw)

    def _h_get_job(self, conn: Connection, msg: m.GetJob) -> m.JobInfo | None:
        return self._job(msg.job_id)

    def _all_jobs(self) -> list[m.JobInfo]:
        return [codec.decode(self.storage.get(_JOBS, k) or b"") for k in self.storage.keys(_JOBS)]

    def _finish_job(self, job_id: JobID) -> None:
        info = self._job(job_id)
        if info is None or not info.alive:
            return
        info = codec.replace(info, alive=False, end_time=time.time())
        self.storage.put(_JOBS, bytes(job_id), codec.encode(info))
        logger.info("job %s finished", job_id.hex())
        self._publish("jobs", b"", info)
        self._publish("worker_died", b"", m.WorkerGone(info.driver.worker_id, info.driver.node_id))
        self.dead_workers.add(bytes(info.driver.worker_id), f"the driver of job {job_id.hex()}, has exited")
        self.actors.job_finished(job_id)
        self.pgs.job_finished(job_id)
        self._held_logs.forget(bytes(job_id))

    def _h_subscribe(self, conn: Connection, msg: m.Subscribe) -> None:
        self.subs.subscribe(conn, msg.channel, msg.key)
        if msg.channel == "logs" and msg.key and self._driver_jobs.get(conn) == JobID(msg.key):
            for batch in self._held_logs.take(msg.key, time.monotonic()):
                conn.notify(m.Published("logs", msg.key, batch))

    def _h_logs(self, conn: Connection, msg: m.LogBatch) -> None:
        key = bytes(msg.job_id)
        driver = next((c for c, job in self._driver_jobs.items() if job == msg.job_id), None)
        if driver is None or driver not in self.subs.subscribers("logs", key):
            # Its driver is not (yet, or again) following it: kept for when it does.
            self._held_logs.hold(key, msg, sum(map(len, msg.lines)), time.monotonic())
        self._publish("logs", key, msg)

    def _on_disconnect(self, conn: Connection) -> None:
        if self._stopping:
            return
        self.subs.drop(conn)
        node_id = self._node_conns.pop(conn, None)
        if node_id is not None:
            self._conn_of_node.pop(node_id, None)
            self._node_died(node_id, "its node daemon disconnected")
        job_id = self._driver_jobs.pop(conn, None)
        if job_id is not None:
            self._finish_job(job_id)

    def _node_died(self, node_id: NodeID, reason: str) -> None:
        record = self.nodes.mark_dead(node_id, reason)
        if record is not None:
            self._announce_dead([record])

    def _h_reattach_driver(self, conn: Connection, msg: m.ReattachDriver) -> None:
        info = self._job(msg.job_id)
        if info is None or not info.alive:
            raise ValueError(f"job {msg.job_id.hex()} is not running")
        self._driver_jobs[conn] = msg.job_id
        self._unclaimed_jobs.discard(msg.job_id)

    def _end_unclaimed_jobs(self) -> None:
        for job_id in sorted(self._unclaimed_jobs):
            logger.warning("job %s ends: its driver did not reconnect after the gcs restarted", job_id.hex())
            self._finish_job(job_id)
        self._unclaimed_jobs.clear()

    def _announce_dead(self, records: list[NodeRecord]) -> None:
        """Nodes were found dead: say so, and let pending actors go elsewhere."""
        for record in records:
            logger.warning("node %s is dead: %s", record.info.node_id.hex()[:8], record.death_reason)
            self.access.audit.record(
                "node_leave", node_id=record.info.node_id.hex(), reason=record.death_reason
            )
            self._save_node(record)
            self._publish("nodes", b"", self._state(record))
        for record in records:
            self.actors.node_died(record.info.node_id)
            self.pgs.node_died(record.info.node_id)
        if records:
            self._awaiting_nodes.difference_update(r.info.node_id for r in records)
            self._nodes_changed()

    def _nodes_changed(self) -> None:
        self.actors.manager.placing_paused = bool(self._awaiting_nodes)
        if not self._awaiting_nodes:
            self.actors.nodes_changed()
            self.pgs.retry()

    def _health_loop(self) -> None:
        if self._stopping:
            return
        # The next check comes whatever happens in this one.
        asyncio.get_running_loop().call_later(1.0, self._health_loop)
        dead = self.nodes.check()
        for record in dead:
            # A node that was only frozen or cut off must not carry on as a member when
            # it comes back: closing its connection makes it exit.
            conn = self._conn_of_node.get(record.info.node_id)
            if conn is not None:
                conn.close()
        self._announce_dead(dead)
        # Actors and groups waiting for resources to come free (or for a group's bundles
        # to exist) look again.
        self._nodes_changed()
