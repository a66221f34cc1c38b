"""The core worker: the library in every driver and worker that owns objects and tasks.

It wires the pieces together and is the only place where the user's thread meets the
I/O thread: ``put``/``get``/``wait``/``submit_task`` run on the caller's thread and hand
network work to the event loop; RPC handlers (``PushTask``, ``GetObject``, ...) run on
the loop. Decisions live in the pieces: ``ReferenceCounter``, ``MemoryStore``,
``TaskManager``, ``NormalTaskSubmitter``, ``TaskExecutor``.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import json
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from manta._private.common import gc_pace, worker_setup
from manta._private.common.aio import spawn
from manta._private.common.config import Config
from manta._private.common.fd_limit import raise_open_file_limit
from manta._private.common.ids import ActorID, JobID, NodeID, ObjectID, TaskID, WorkerID
from manta._private.common.runtime_env import PACKAGE_KV_NAMESPACE, runtime_env_key
from manta._private.common.session import LOGS_DIR, SessionInfo, worker_socket_path
from manta._private.core_worker import args as argpack
from manta._private.core_worker import object_ref as object_ref_module
from manta._private.core_worker.actor_client import ActorClient
from manta._private.core_worker.actor_submitter import ActorTaskSubmitter
from manta._private.core_worker.borrowing import Borrowing
from manta._private.core_worker.executor import ExecutorParts, TaskExecutor
from manta._private.core_worker.function_manager import FunctionManager
from manta._private.core_worker.gcs_link import GcsLink
from manta._private.core_worker.job_logging import apply_job_logging
from manta._private.core_worker.lease_policy import scheduling_key
from manta._private.core_worker.local_mode import LocalRunner
from manta._private.core_worker.log_printer import LogPrinter
from manta._private.core_worker.loop_thread import EventLoopThread, loop_turns
from manta._private.core_worker.memory_store import MemoryStore
from manta._private.core_worker.metric_reports import report_metrics, report_metrics_every
from manta._private.core_worker.object_manager import ObjectManager
from manta._private.core_worker.object_ref import ObjectRef
from manta._private.core_worker.object_ref_generator import ObjectRefGenerator
from manta._private.core_worker.recovery import LossRecovery
from manta._private.core_worker.reference_counter import ReferenceCounter
from manta._private.core_worker.streams import StreamTable
from manta._private.core_worker.submitter import NormalTaskSubmitter
from manta._private.core_worker.task_context import TaskContext
from manta._private.core_worker.task_environment import TaskEnvironment
from manta._private.core_worker.task_events import TaskEventBuffer, report_periodically
from manta._private.core_worker.task_events import report as report_task_events
from manta._private.core_worker.task_manager import PendingTask, TaskManager
from manta._private.rpc import messages as m
from manta._private.rpc.auth import cluster_only
from manta._private.rpc.connection_pool import ConnectionPool
from manta._private.rpc.endpoints import RpcServer, connect_with_retry
from manta._private.rpc.transport import Connection, ConnectionLost, Dispatcher, RemoteError, Reply
from manta.exceptions import (
    LocalRayletDiedError,
    ObjectStoreFullError,
    OutOfDiskError,
    RayError,
)

logger = logging.getLogger(__name__)

# The ref_args of every new TaskSpec (filled by codec.replace once arguments resolve): one
# shared empty list, never changed, since specs are immutable.
NO_REF_ARGS: list[m.ArgValue] = []

_NODE_ERRORS: dict[str, type[Exception]] = {
    "ObjectStoreFullError": ObjectStoreFullError,
    "OutOfDiskError": OutOfDiskError,
}


class CoreWorker:
    def __init__(
        self,
        *,
        is_driver: bool,
        config: Config,
        session: SessionInfo,
        worker_id: WorkerID | None = None,
        namespace: str = "",
        job_config: dict[str, Any] | None = None,
        log_to_driver: bool = True,
        local_mode: bool = False,
    ) -> None:
        self.is_driver = is_driver
        self.config = config
        self.session = session
        self.node_id = NodeID(session.node_id)
        self.worker_id = worker_id or WorkerID.from_random()
        self.namespace = namespace
        self._job_config = job_config or {}
        self._log_to_driver = log_to_driver
        self.job_id = JobID.nil()
        # The runtime_env given to init(); tasks without their own inherit it.
        self.job_runtime_env: dict[str, Any] | None = None
        # Runtime envs given to submissions, resolved for the cluster (directories
        # uploaded), by their JSON: a directory is packed once per process.
        self.resolved_runtime_envs: dict[str, Any] = {}
        # id(own env) -> (own env, inherited env, what a submission carries): see
        # api/runtime_env.for_submission.
        self.submission_envs: dict[int, tuple[Any, Any, Any]] = {}
        self._applied_env: str | None = None
        self._make_helpers(is_driver, local_mode)
        # The running task: per thread and per asyncio task (async actors run many at once).
        self._context: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar(
            "manta_task", default=None
        )
        # Set in a worker that hosts an actor.
        self.actor_id: ActorID | None = None
        self.actor_instance_ids: dict[str, list[str]] = {}
        self.actor_resources: dict[str, float] = {}
        self.actor_placement_group: list[Any] | None = None  # an actor's, for its methods
        self.task_env = TaskEnvironment(is_driver)
        self._driver_context: TaskContext | None = None
        self._server: RpcServer | None = None
        self.node_conn: Connection = None  # type: ignore[assignment]  # set by connect()
        # Once a lost gcs is back, actors' states are asked again: they may have changed.
        self.gcs = GcsLink(session, self.dispatcher, config, self.worker_id, is_driver, lambda: self._closed)
        self.gcs.regained = lambda: self.actor_submitter.refresh_all()
        self._peers: ConnectionPool | None = None  # made on first use, on the I/O thread
        self._peer_nodes: dict[str, NodeID] = {}  # the node each pooled peer is on
        # host:port of other live nodes' daemons, learnt from the gcs when first needed.
        self._node_addresses: dict[NodeID, str] = {}
        # Called with each error the system pushes to this driver's job (``ErrorPush``).
        self.error_listeners: list[Any] = []
        self._inbox: deque[PendingTask] = deque()
        self._inbox_scheduled = False
        self._jobs_set_up: set[JobID] = set()
        self._warned: set[str] = set()
        self._closed = False
        self._gc_relaxed: tuple[gc_pace.Thresholds, gc_pace.Thresholds] | None = None
        self.address: m.Address = m.Address(self.node_id, self.worker_id, session.host, 0, "", os.getpid())
        self._register_handlers()

    # -- lifecycle -----------------------------------------------------------------------------
    def _make_helpers(self, is_driver: bool, local_mode: bool) -> None:
        """The core worker's parts, wired together: each gets the parts it uses, and this
        core worker only as ``Peers`` (reaching other processes) or ``TaskHost`` (the
        running task). A part is made after those it uses; where two use each other, the
        one made first reaches the other through a lambda (on paths that are not hot) or,
        for the object manager's collection on every call, an attribute set at the end."""
        config, store, refs = self.config, MemoryStore(), ReferenceCounter()
        self.memory_store, self.references = store, refs
        events = self.task_events = TaskEventBuffer(0 if local_mode else config.task_events_max_buffered)
        self._log_printer: LogPrinter | None = None  # made by a driver's first output to print
        self.io = EventLoopThread("manta-io")
        self.streams = StreamTable(
            store,
            refs,
            self.worker_id,
            lambda: self.address,
            lambda returns: self.objects.free_store_copies(returns),
            self.io.call_soon,
        )
        task_manager = self.task_manager = TaskManager(store, refs, events, self.worker_id, self.streams)
        self.borrowing = Borrowing(
            self,
            refs,
            config.allow_out_of_band_object_ref_serialization,
            lambda object_id: self.objects.call_site(object_id),
        )
        self.recovery = LossRecovery(
            self, store, refs, self.borrowing, task_manager, ObjectManager.error_object, self.hand_to_io
        )
        objects = self.objects = ObjectManager(
            self,
            self,
            config,
            store,
            refs,
            self.borrowing,
            task_manager,
            self.recovery,
            self.session.arena_path,
        )
        functions = self.functions = FunctionManager(self.kv_put, self.kv_get, self.push_error)
        self.dispatcher = Dispatcher()
        self.submitter = NormalTaskSubmitter(self, config, task_manager, objects, store, self.recovery)

        def actor_dead(actor_id: ActorID) -> None:  # the actor client is made last
            self.actors.actor_dead(actor_id)

        self.actor_submitter = ActorTaskSubmitter(
            self, task_manager, objects, store, self.recovery, actor_dead
        )
        parts = ExecutorParts(self, self, objects, functions, self.borrowing, config.pipeline_requeue_after_s)
        self.executor: TaskExecutor | None = None if is_driver else TaskExecutor(*parts)
        # init(local_mode=True): tasks and actors run in this (the driver's) process.
        self.local = LocalRunner(parts, store, task_manager, actor_dead) if local_mode else None
        self.actors = ActorClient(
            self, refs, self.pack_arguments, self.submit_task, self.actor_submitter, self.local, events
        )
        # Dropped actor handles are applied with dropped refs, on every collection.
        objects.collect_actor_handles = self.actors.collect

    def connect(self) -> None:
        """Start serving, join the node and the gcs; for a driver, register the job."""
        raise_open_file_limit()
        self._gc_relaxed = gc_pace.relax(self.config.gc_threshold)
        self.io.run(self._connect(), timeout=60)
        object_ref_module.bind_worker(self)
        if self.is_driver:
            self._driver_context = TaskContext(TaskID.for_driver(self.job_id), self.job_id)

    async def _connect(self) -> None:
        cfg = self.config
        token = self.session.token
        self._server = RpcServer(
            self.dispatcher,
            cluster_only(token),
            max_frame_bytes=cfg.max_frame_bytes,
            ident=bytes(self.worker_id),
        )
        unix = worker_socket_path(self.session.session_dir, self.worker_id.hex())
        await self._server.listen_unix(unix)
        port = await self._server.listen_tcp(self.session.host, 0)
        self.address = m.Address(self.node_id, self.worker_id, self.session.host, port, unix, os.getpid())
        kind = "driver" if self.is_driver else "worker"
        self.node_conn = await connect_with_retry(
            self.session.node_address,
            token,
            self.dispatcher,
            attempts_s=10.0,
            kind=kind,
            ident=bytes(self.worker_id),
            info={"pid": os.getpid()},
            max_frame_bytes=cfg.max_frame_bytes,
            on_close=self._node_connection_lost,
        )
        if self.is_driver:
            config = dict(self._job_config)
            config.setdefault("sys_path", [p for p in sys.path if p])
            config.setdefault("cwd", os.getcwd())
            config.setdefault("worker_setup", worker_setup.registered())
            topics = ["logs", "errors"] if self._log_to_driver else ["errors"]
            registration = m.RegisterJob(self.address, self.namespace, config)
            self.job_id = await self.gcs.register_driver(registration, topics)
            self.node_conn.notify(m.RegisterWorker(self.worker_id, self.address))
        else:
            await self.node_conn.call(m.RegisterWorker(self.worker_id, self.address))
        self.objects.start()
        self.task_events.reporter = [self.node_id, self.worker_id, os.getpid()]
        interval = cfg.task_events_report_interval_s
        report_periodically(self.task_events, lambda: self.node_conn, interval, lambda: self._closed)
        report_metrics_every(lambda: self.node_conn, cfg.metrics_report_interval_s, lambda: self._closed)

    async def gcs_connection(self) -> Connection:
        """The connection to the gcs, made on first use; callers that overlap share one."""
        return await self.gcs.connection()

    async def gcs_call(self, msg: Any) -> Any:
        """A gcs request, sent again to the gcs once it is back if it restarts meanwhile."""
        return await self.gcs.call(msg)

    async def subscribe_gcs(self, channel: str, key: bytes) -> None:
        """Subscribe, and again after every reconnection to a restarted gcs."""
        await self.gcs.subscribe(channel, key)

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.local is not None:
            self.local.shutdown()
        object_ref_module.bind_worker(None)
        try:
            self.io.run(self._disconnect(), timeout=5)
        except Exception as e:  # the cluster may already be gone
            logger.debug("disconnect failed: %s", e)
        self.io.stop()
        gc_pace.restore(self._gc_relaxed)

    async def _disconnect(self) -> None:
        report_task_events(self.task_events, lambda: self.node_conn)
        report_metrics(lambda: self.node_conn)
        gcs_conn = self.gcs.conn
        if self.is_driver and gcs_conn is not None and not gcs_conn.closed:
            try:
                if self._log_to_driver and not self.node_conn.closed:
                    # Print what the workers wrote last before the job (and they) end.
                    await asyncio.wait_for(self.node_conn.call(m.FlushLogs()), 5.0)
                    await asyncio.wait_for(gcs_conn.call(m.Ping()), 5.0)
                await asyncio.wait_for(gcs_conn.call(m.JobFinished(self.job_id)), 2.0)
            except Exception:
                pass
            finally:  # what was held back is printed even when the cluster is gone
                if self._log_printer is not None:
                    self._log_printer.flush()
        if self._peers is not None:
            self._peers.close()
        self.gcs.close()
        if self.node_conn is not None:
            self.node_conn.close()
        if self._server is not None:
            self._server.close()

    def _node_connection_lost(self, conn: Connection) -> None:
        if self._closed:
            return
        handshake = conn.handshake
        if not handshake.done() or handshake.cancelled() or handshake.exception() is not None:
            return  # never connected (refused at the handshake): connect() reports why
        if not self.is_driver:
            # Workers live and die with their node daemon.
            os._exit(0)
        logger.error("lost the connection to the local node daemon; the cluster is gone")

    def node_failure_error(self, error: BaseException) -> RayError:
        return LocalRayletDiedError()

    # -- handlers ----------------------------------------------------------------------------
    def _register_handlers(self) -> None:
        d = self.dispatcher
        d.register(m.PushTask, self._handle_push_task, answers_later=True)
        d.register(m.CreateActor, self._handle_create_actor, answers_later=True)
        d.register(m.CancelTask, self._handle_cancel_task)
        d.register(m.CancelOwnedTask, self._handle_cancel_owned)
        d.register(m.GetObject, self.objects.handle_get_object)
        d.register(m.GetReferences, lambda c, msg: self.objects.references_report())
        d.register(m.AddBorrower, self.borrowing.handle_add_borrower)
        d.register(m.RemoveBorrower, self.borrowing.handle_remove_borrower)
        d.register(m.ObjectLost, self.recovery.handle_object_lost)
        d.register(m.ReleaseOutOfBand, lambda c, msg: self.references.consume_out_of_band(msg.object_ids))
        d.register(m.ExitWorker, self._handle_exit)
        d.register(m.Published, self._handle_published)
        d.register(m.LeaseInfeasible, lambda _c, msg: self.submitter.on_infeasible(msg))
        d.register(m.GeneratorItem, lambda _c, msg: self.streams.on_item(msg.task_id, msg.index, msg.item))

    def _handle_push_task(self, _conn: Connection, msg: m.PushTask, reply: Reply) -> None:
        if self.executor is None:
            raise RuntimeError("a driver does not execute tasks")
        self.executor.enqueue(msg, reply)

    def _handle_create_actor(self, _conn: Connection, msg: m.CreateActor, reply: Reply) -> None:
        if self.executor is None or self.executor.actor is not None:
            raise RuntimeError("this process cannot host an actor")
        self.executor.enqueue_create(msg, reply)

    def _handle_cancel_task(self, _conn: Connection, msg: m.CancelTask) -> bool:
        found = self.executor.cancel(msg.task_id, msg.force) if self.executor is not None else False
        if found and msg.force and self.executor is not None:
            # This worker is about to be killed: hand back what waits behind the task.
            self.executor.send_back_queued()
        if msg.recursive:
            for child in list(self.task_manager.children.get(msg.task_id, ())):
                task = self.task_manager.get(child)
                if task is not None:
                    self.submitter.cancel(task, msg.force, True)
        return found

    def _handle_exit(self, _conn: Connection, msg: m.ExitWorker) -> bool:
        if msg.if_unused and self.owns_objects():
            logger.info("not exiting (%s): this worker owns objects still in use", msg.reason)
            return False
        logger.info("exiting: %s", msg.reason)
        spawn(self._flush_and_exit(), "exiting")
        return True

    def owns_objects(self) -> bool:
        """Whether others may still need this process: objects or actors it owns, tasks it
        awaits. Such a worker must not exit quietly (its objects would die with it)."""
        self.objects.collect_references()
        return self.references.num_owned() > 0 or bool(self.task_manager.tasks) or self.actors.owns_actors()

    async def _flush_and_exit(self) -> None:
        report_task_events(self.task_events, lambda: self.node_conn)
        report_metrics(lambda: self.node_conn)
        await loop_turns()  # queued replies reach their sockets before the process goes
        if self._peers is not None:
            self._peers.close()
        if self._server is not None:
            self._server.close()
        await asyncio.sleep(0.05)
        os._exit(0)

    def report_task_events_now(self) -> None:
        """Send the recorded task events at once: this worker may be killed next."""
        self.io.call_soon(report_task_events, self.task_events, lambda: self.node_conn)

    def exit_after_replies(self) -> None:
        """Exit the worker process once what it has sent is on the wire (max_calls)."""
        self.io.run(self._flush_and_exit(), timeout=10)
        os._exit(0)

    def _handle_published(self, _conn: Connection, msg: m.Published) -> None:
        if msg.channel == "logs" and isinstance(msg.payload, m.LogBatch):
            if self._log_printer is None:
                self._log_printer = LogPrinter(self.config, self.node_id, time.monotonic, self._job_config)
            self._log_printer.show(msg.payload)
        elif msg.channel == "errors" and isinstance(msg.payload, m.ErrorPush):
            logger.error("%s", msg.payload.message)
            for listener in list(self.error_listeners):
                listener(msg.payload)
        elif msg.channel == "actor" and isinstance(msg.payload, m.ActorInfo):
            self.actor_submitter.on_info(msg.payload)
        elif msg.channel == "worker_died" and isinstance(msg.payload, m.WorkerGone):
            self.borrowing.worker_gone(msg.payload.worker_id)
        elif msg.channel == "nodes" and isinstance(msg.payload, m.NodeState) and not msg.payload.alive:
            self.node_died(msg.payload.info.node_id)
            self.borrowing.node_gone(msg.payload.info.node_id)

    # -- connections ----------------------------------------------------------------------------
    async def connect_worker(self, address: m.Address) -> Connection:
        """A pooled connection to another core worker."""
        return await self.connect_peer(
            address.for_peer_on(self.node_id), address.node_id, bytes(address.worker_id)
        )

    async def connect_node(self, address: str, node_id: NodeID) -> Connection:
        """A pooled connection to another node's daemon (``host:port``)."""
        return await self.connect_peer(address, node_id)

    async def node_address(self, node_id: NodeID) -> str | None:
        """The daemon address of a live node (None if the gcs knows no such live node)."""
        if node_id not in self._node_addresses:
            states = await self.gcs.call(m.GetNodes())
            self._node_addresses = {s.info.node_id: f"{s.info.host}:{s.info.port}" for s in states if s.alive}
        return self._node_addresses.get(node_id)

    def node_died(self, node_id: NodeID) -> None:
        """The gcs declared a node dead (it may only be cut off, so its connections need not
        close): drop ours to it and its workers, so that what waits on them fails over now."""
        self._node_addresses.pop(node_id, None)
        if self._peers is None:
            return
        for key in [k for k, n in self._peer_nodes.items() if n == node_id]:
            del self._peer_nodes[key]
            self._peers.drop(key)

    async def connect_peer(self, key: str, node_id: NodeID, ident: bytes = b"") -> Connection:
        if self._peers is None:
            self._peers = ConnectionPool(
                self.session.token,
                self.dispatcher,
                kind="driver" if self.is_driver else "worker",
                ident=bytes(self.worker_id),
                max_frame_bytes=self.config.max_frame_bytes,
            )
        self._peer_nodes[key] = node_id
        if node_id != self.node_id:
            self.gcs.follow("nodes", b"")  # work on other nodes: hear when one dies (see node_died)
        return await self._peers.get(key, ident)

    def call_gcs(self, msg: Any, timeout: float = 30.0) -> Any:
        """A blocking gcs request from a non-I/O thread."""

        return self.io.run(self.gcs.call(msg), timeout)

    def call_node(self, msg: Any, timeout: float = 60.0) -> Any:
        """A blocking request to the local node daemon from a non-I/O thread; store errors
        come back as themselves (ObjectStoreFullError, OutOfDiskError)."""

        async def call() -> Any:
            return await self.node_conn.call(msg)

        try:
            return self.io.run(call(), timeout)
        except RemoteError as e:
            translated = _NODE_ERRORS.get(e.type_name)
            if translated is not None:
                raise translated(e.text) from None
            raise

    def push_error(self, kind: str, text: str) -> None:
        """Tell this job's driver (an ``ErrorPush``; the driver logs it), from any thread."""

        async def push() -> None:
            try:
                (await self.gcs_connection()).notify(m.ErrorPush(self.job_id, kind, text, time.time()))
            except Exception as e:
                logger.warning("could not tell the driver (%s): %s", kind, e)

        self.io.call_soon(spawn, push(), "pushing an error to the driver")

    def kv_put(self, namespace: str, key: bytes, value: bytes) -> None:
        self.call_gcs(m.KvPut(namespace, key, value, True))

    def kv_get(self, namespace: str, key: bytes) -> bytes | None:
        result = self.call_gcs(m.KvGet(namespace, key))
        return None if result is None else bytes(result)

    # -- task context --------------------------------------------------------------------------
    @property
    def context(self) -> TaskContext:
        ctx = self._context.get()
        if ctx is not None:
            return ctx
        if self._driver_context is None:
            # A worker between tasks (e.g. a background thread): act for no task.
            self._driver_context = TaskContext(TaskID.for_driver(self.job_id), self.job_id)
        return self._driver_context

    def enter_task(
        self, spec: m.TaskSpec, instance_ids: dict[str, list[str]]
    ) -> contextvars.Token[TaskContext | None]:
        if spec.job_id not in self._jobs_set_up:
            self._set_up_job(spec.job_id)
        resources = spec.resources
        if spec.actor_id is not None and not instance_ids:
            # An actor's method holds what the actor holds, from its creation.
            instance_ids = self.actor_instance_ids
            resources = self.actor_resources
        self.task_env.enter(instance_ids.get("GPU"), resources)
        # Each attempt numbers its puts afresh: a retry on this worker must not reuse ids.
        puts = itertools.count(((spec.attempt % 128) << 24) + 1)
        return self._context.set(
            TaskContext(
                spec.task_id,
                spec.job_id,
                spec.name,
                resources,
                instance_ids,
                puts,
                spec.depth,
                spec.placement_group if spec.actor_id is None else self.actor_placement_group,
            )
        )

    def ensure_runtime_env(self, env: dict[str, Any] | None) -> None:
        """Enter the runtime env ``env`` before this worker's first task, setting it up on
        this host first if needed (packages fetched and unpacked, a venv built). A worker
        serves one runtime env for its whole life (the node daemon keys its pool by it).
        Raises ``RuntimeEnvSetupError``; the next task then tries again."""
        if not env or self._applied_env is not None:
            return
        from manta._private.runtime_env import worker_env

        def fetch(uri: str) -> bytes | None:
            return self.kv_get(PACKAGE_KV_NAMESPACE, uri.split("://", 1)[1].encode())

        key, started = self.runtime_env_key(env), time.time()
        try:
            ready = worker_env.prepare(
                env, fetch, self.config.tmpdir, os.path.join(self.session.session_dir, LOGS_DIR)
            )
        except Exception as e:
            self._report_env(key, env, started, f"{type(e).__name__}: {e}")
            raise
        self._report_env(key, env, started, "")
        self._applied_env = key
        # Tasks this worker submits inherit the env it runs in, as in Ray.
        self.job_runtime_env = env
        worker_env.enter(ready)

    def _report_env(self, key: str, env: dict[str, Any], started: float, error: str) -> None:
        """Tell the node which runtime env this worker set up, and how (list_runtime_envs)."""
        spec = json.dumps(env, sort_keys=True, default=str)
        report = m.RuntimeEnvReport(key, spec, not error, error[:2000], int(started * 1000))
        self.io.call_soon(self.node_conn.notify, report)

    def exit_task(self, token: contextvars.Token[TaskContext | None]) -> None:
        self._context.reset(token)

    def _set_up_job(self, job_id: JobID) -> None:
        self.job_id = job_id
        info = self.call_gcs(m.GetJob(job_id))
        if isinstance(info, m.JobInfo):
            self.namespace = info.namespace
            self.job_runtime_env = info.config.get("runtime_env")
            for path in reversed(info.config.get("sys_path", [])):
                if path not in sys.path:
                    sys.path.insert(0, path)
            cwd = info.config.get("cwd")
            if cwd and os.path.isdir(cwd):
                os.chdir(cwd)
            worker_setup.run(info.config.get("worker_setup", ()))
            apply_job_logging(self, info.config.get("logging_config"))
        self._jobs_set_up.add(job_id)

    # -- tasks ---------------------------------------------------------------------------------
    def task_running(self) -> bool:
        """Whether the calling thread (or asyncio task) runs a task of this worker."""
        return self._context.get() is not None

    def submit_task(
        self,
        *,
        function_id: bytes,
        function_name: str,
        name: str,
        args: tuple[Any, ...] | argpack.Packed,
        kwargs: dict[str, Any],
        num_returns: int,
        resources: dict[str, float],
        max_retries: int,
        retry_exceptions: bool | tuple[type, ...],
        runtime_env: dict[str, Any] | None,
        strategy: Any,
        max_calls: int = 0,
        actor_id: ActorID | None = None,
        method: str = "",
        concurrency_group: str = "",
        placement_group: list[Any] | None = None,
        generator: int = 0,
        backpressure: int = 0,
        task_events: bool = True,
        task_id: TaskID | None = None,
    ) -> list[ObjectRef]:
        """Submit a task or actor call (``task_id``: a remote driver's); its returns' refs."""
        self.objects.collect_references()
        ctx = self.context
        task_id = task_id or _new_task_id(self.job_id, actor_id)
        blob, ref_args, held = self.pack_arguments(args, kwargs, f"the task {function_name}")
        return_ids = [ObjectID.for_return(task_id, i) for i in range(num_returns)]
        for oid in return_ids:
            self.references.add_owned(oid)
            self.objects.record_call_site(oid)
        refs = [ObjectRef(oid, self.address) for oid in return_ids]
        spec = m.TaskSpec(
            task_id=task_id,
            job_id=self.job_id,
            parent_task_id=ctx.task_id,
            name=name,
            function_id=function_id,
            function_name=function_name,
            args=blob,
            ref_args=NO_REF_ARGS,
            num_returns=num_returns,
            owner=self.address,
            attempt=0,
            resources=resources,
            runtime_env=runtime_env,
            depth=ctx.depth + 1,
            max_calls=max_calls,
            actor_id=actor_id,
            method=method,
            concurrency_group=concurrency_group,
            placement_group=placement_group,
            generator=generator,
            backpressure=backpressure,
            task_events=task_events,
        )
        if generator:
            self.streams.open(task_id, generator == m.GENERATOR_DYNAMIC, backpressure)
        sched_key = scheduling_key(resources, runtime_env, strategy)
        task = PendingTask(
            spec, return_ids, ref_args, held, max_retries, retry_exceptions, sched_key, strategy
        )
        self.task_manager.add(task)
        if self.local is not None:
            self.local.submit(task)
        elif ref_args or self._inbox or not self._send_now(task):
            self.hand_to_io(task)  # (with tasks handed over before it, it goes after them)
        return refs

    def pack_arguments(
        self, args: tuple[Any, ...] | argpack.Packed, kwargs: dict[str, Any], describe: str
    ) -> tuple[bytes, Sequence[ObjectRef], Sequence[ObjectID]]:
        """The inline argument blob, the top-level ref arguments, and the ids of every ref
        in the arguments (nested ones too), now counted as used by a pending task or actor
        until it is done with them (``references.remove_submitted`` of those ids).
        ``args`` packed already (a remote driver's) are taken as they are."""
        if not isinstance(args, argpack.Packed):
            args = argpack.pack(
                args,
                kwargs,
                max_inline=self.config.max_inline_bytes,
                put=self.objects.put_serialized,
                describe=describe,
            )
        blob, ref_args, nested = args.blob, args.ref_args, args.nested
        if not ref_args and not nested:
            return blob, (), ()
        refs = [*ref_args, *nested]
        self.references.add_submitted([(r.id, r.owner_address()) for r in refs])
        return blob, ref_args, [r.id for r in refs]

    def _send_now(self, task: PendingTask) -> bool:
        """From the submitting thread: send ``task`` from here to a worker (or actor) of
        its that idles; False if there is none (nothing was done)."""
        if task.spec.actor_id is None:
            return self.submitter.push_now(task)
        return self.actor_submitter.send_now(task)

    def hand_to_io(self, task: PendingTask) -> None:
        self._inbox.append(task)
        if not self._inbox_scheduled:
            self._inbox_scheduled = True
            self.io.call_soon(self._drain_inbox)

    def _drain_inbox(self) -> None:
        self._inbox_scheduled = False
        inbox = self._inbox
        while inbox:
            # Taken out only once submitted: while it is in, later tasks are not sent from
            # their threads (send_now), so none overtakes it.
            task = inbox[0]
            try:
                if task.spec.actor_id is None:
                    self.submitter.submit(task)
                else:
                    self.actor_submitter.submit(task)
            finally:
                inbox.popleft()

    def cancel(self, ref: ObjectRef, force: bool, recursive: bool) -> None:
        task = self.task_manager.get(ref.task_id())
        if task is not None:
            self.io.call_soon(self.submitter.cancel, task, force, recursive)
            return
        owner = ref.owner_address()
        if owner is not None and owner.worker_id != self.worker_id:
            # Another process owns it: only its owner can cancel it.
            msg = m.CancelOwnedTask(ref.task_id(), force, recursive)
            self.io.run(self._send_to_owner(owner, msg), timeout=30)

    async def _send_to_owner(self, owner: m.Address, msg: Any) -> None:
        try:
            (await self.connect_worker(owner)).notify(msg)
        except (ConnectionLost, OSError) as e:
            logger.info("cannot reach the owner at %s to cancel a task: %s", owner.host, e)

    def _handle_cancel_owned(self, _conn: Connection, msg: m.CancelOwnedTask) -> None:
        task = self.task_manager.get(msg.task_id)
        if task is not None and task.spec.actor_id is None:
            self.submitter.cancel(task, msg.force, msg.recursive)

    @staticmethod
    def runtime_env_key(runtime_env: dict[str, Any] | None) -> str:
        return runtime_env_key(runtime_env)

    def stream_of(self, completion: ObjectRef) -> ObjectRefGenerator:
        """What calling a streaming generator task returns, reading through this worker."""
        return ObjectRefGenerator(completion, self)

    @property
    def closed(self) -> bool:
        return self._closed

    def warn(self, text: str, once: bool = True) -> None:
        if once:
            if text in self._warned:
                return
            self._warned.add(text)
        logger.warning(text)
        if not self.is_driver:
            print(f"Warning: {text}", file=sys.stderr, flush=True)


def _new_task_id(job_id: JobID, actor_id: ActorID | None) -> TaskID:
    return TaskID.for_normal_task(job_id) if actor_id is None else TaskID.for_actor_task(actor_id)
