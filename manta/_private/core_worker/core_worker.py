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
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from manta._private import serialization
from manta._private.common.aio import spawn
from manta._private.common.config import Config
from manta._private.common.ids import ActorID, JobID, NodeID, ObjectID, TaskID, WorkerID
from manta._private.common.runtime_env import runtime_env_key
from manta._private.common.session import SessionInfo, socket_path
from manta._private.core_worker import args as argpack
from manta._private.core_worker import object_ref as object_ref_module
from manta._private.core_worker.actor_client import ActorClient
from manta._private.core_worker.actor_submitter import ActorTaskSubmitter
from manta._private.core_worker.executor import TaskExecutor
from manta._private.core_worker.function_manager import FunctionManager
from manta._private.core_worker.loop_thread import EventLoopThread
from manta._private.core_worker.memory_store import MemoryStore, StoredObject
from manta._private.core_worker.object_ref import ObjectRef
from manta._private.core_worker.reference_counter import ReferenceCounter
from manta._private.core_worker.submitter import NormalTaskSubmitter
from manta._private.core_worker.task_manager import PendingTask, TaskManager
from manta._private.rpc import messages as m
from manta._private.rpc.transport import (
    Connection,
    ConnectionLost,
    Dispatcher,
    RpcServer,
    connect,
    connect_with_retry,
)
from manta.exceptions import (
    GetTimeoutError,
    LocalRayletDiedError,
    ObjectFreedError,
    ObjectLostError,
    OwnerDiedError,
    RayError,
    RayTaskError,
)

logger = logging.getLogger(__name__)

_COLLECT_INTERVAL_S = 0.5


@dataclass(slots=True)
class TaskContext:
    """What the running task (or the driver) is, for nested submission and the runtime context."""

    task_id: TaskID
    job_id: JobID
    name: str = ""
    resources: dict[str, float] = field(default_factory=dict)
    instance_ids: dict[str, list[str]] = field(default_factory=dict)
    put_counter: Any = field(default_factory=lambda: itertools.count(1))
    depth: int = 0


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
        self._applied_env: str | None = None
        self.memory_store = MemoryStore()
        self.references = ReferenceCounter()
        self.task_manager = TaskManager(self.memory_store, self.references, config.max_inline_bytes)
        self.functions = FunctionManager(self.kv_put, self.kv_get)
        self.dispatcher = Dispatcher()
        self.io = EventLoopThread("manta-io")
        self.submitter = NormalTaskSubmitter(self)
        self.actor_submitter = ActorTaskSubmitter(self)
        self.actors = ActorClient(self)
        self.executor: TaskExecutor | None = None if is_driver else TaskExecutor(self)
        # The running task: per thread and per asyncio task (async actors run many at once).
        self._context: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar(
            "manta_task", default=None
        )
        # Set in a worker that hosts an actor.
        self.actor_id: ActorID | None = None
        self.actor_instance_ids: dict[str, list[str]] = {}
        self._driver_context: TaskContext | None = None
        self._server: RpcServer | None = None
        self.node_conn: Connection = None  # type: ignore[assignment]  # set by connect()
        self.gcs_conn: Connection | None = None
        self._peer_conns: dict[str, asyncio.Future[Connection]] = {}
        self._fetching: set[ObjectID] = set()
        self._inbox: deque[PendingTask] = deque()
        self._inbox_scheduled = False
        self._jobs_set_up: set[JobID] = set()
        self._blocked_depth = 0
        self._warned: set[str] = set()
        self._closed = False
        self.address: m.Address = m.Address(self.node_id, self.worker_id, session.host, 0, "", os.getpid())
        self._register_handlers()

    # -- lifecycle -----------------------------------------------------------------------------
    def connect(self) -> None:
        """Start serving, join the node and the gcs; for a driver, register the job."""
        self.io.run(self._connect(), timeout=60)
        object_ref_module.bind_worker(self)
        if self.is_driver:
            self._driver_context = TaskContext(TaskID.for_driver(self.job_id), self.job_id)

    async def _connect(self) -> None:
        cfg = self.config
        token = self.session.token
        self._server = RpcServer(self.dispatcher, token, max_frame_bytes=cfg.max_frame_bytes)
        unix = socket_path(self.session.session_dir, f"w-{self.worker_id.hex()[:16]}")
        await self._server.listen_unix(unix)
        port = await self._server.listen_tcp(self.session.host, 0)
        self.address = m.Address(self.node_id, self.worker_id, self.session.host, port, unix, os.getpid())
        role = "driver" if self.is_driver else "worker"
        self.node_conn = await connect_with_retry(
            self.session.node_address,
            token,
            self.dispatcher,
            attempts_s=10.0,
            role=role,
            ident=bytes(self.worker_id),
            info={"pid": os.getpid()},
            max_frame_bytes=cfg.max_frame_bytes,
            on_close=self._node_connection_lost,
        )
        if self.is_driver:
            await self.gcs_connection()
            assert self.gcs_conn is not None
            config = dict(self._job_config)
            config.setdefault("sys_path", [p for p in sys.path if p])
            config.setdefault("cwd", os.getcwd())
            raw = await self.gcs_conn.call(m.RegisterJob(self.address, self.namespace, config))
            self.job_id = JobID(raw)
            if self._log_to_driver:
                await self.gcs_conn.call(m.Subscribe("logs", bytes(self.job_id)))
            self.node_conn.notify(m.RegisterWorker(self.worker_id, self.address))
        else:
            await self.node_conn.call(m.RegisterWorker(self.worker_id, self.address))
        self.io.loop.call_later(_COLLECT_INTERVAL_S, self._periodic_collect)

    async def gcs_connection(self) -> Connection:
        if self.gcs_conn is None or self.gcs_conn.closed:
            self.gcs_conn = await connect_with_retry(
                self.session.gcs_address,
                self.session.token,
                self.dispatcher,
                attempts_s=10.0,
                role="driver" if self.is_driver else "worker",
                ident=bytes(self.worker_id),
                max_frame_bytes=self.config.max_frame_bytes,
            )
        return self.gcs_conn

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        object_ref_module.bind_worker(None)
        try:
            self.io.run(self._disconnect(), timeout=5)
        except Exception as e:  # the cluster may already be gone
            logger.debug("disconnect failed: %s", e)
        self.io.stop()

    async def _disconnect(self) -> None:
        if self.is_driver and self.gcs_conn is not None and not self.gcs_conn.closed:
            try:
                await asyncio.wait_for(self.gcs_conn.call(m.JobFinished(self.job_id)), 2.0)
            except Exception:
                pass
        for fut in self._peer_conns.values():
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                fut.result().close()
        if self.gcs_conn is not None:
            self.gcs_conn.close()
        if self.node_conn is not None:
            self.node_conn.close()
        if self._server is not None:
            self._server.close()

    def _node_connection_lost(self, _conn: Connection) -> None:
        if self._closed:
            return
        if not self.is_driver:
            # Workers live and die with their node daemon.
            os._exit(0)
        logger.error("lost the connection to the local node daemon; the cluster is gone")

    def node_failure_error(self, error: BaseException) -> RayError:
        return LocalRayletDiedError()

    # -- handlers ----------------------------------------------------------------------------
    def _register_handlers(self) -> None:
        d = self.dispatcher
        d.register(m.PushTask, self._handle_push_task)
        d.register(m.CreateActor, self._handle_create_actor)
        d.register(m.CancelTask, self._handle_cancel_task)
        d.register(m.GetObject, self._handle_get_object)
        d.register(m.ExitWorker, self._handle_exit)
        d.register(m.Published, self._handle_published)
        d.register(m.LeaseInfeasible, lambda _c, msg: self.submitter.on_infeasible(msg))

    def _handle_push_task(self, _conn: Connection, msg: m.PushTask) -> asyncio.Future[Any]:
        if self.executor is None:
            raise RuntimeError("a driver does not execute tasks")
        reply: asyncio.Future[Any] = self.io.loop.create_future()
        self.executor.enqueue(msg, reply)
        return reply

    def _handle_create_actor(self, _conn: Connection, msg: m.CreateActor) -> asyncio.Future[Any]:
        if self.executor is None or self.executor.actor is not None:
            raise RuntimeError("this process cannot host an actor")
        reply: asyncio.Future[Any] = self.io.loop.create_future()
        self.executor.enqueue_create(msg, reply)
        return reply

    def _handle_cancel_task(self, _conn: Connection, msg: m.CancelTask) -> bool:
        found = self.executor.cancel(msg.task_id) if self.executor is not None else False
        if msg.recursive:
            for child in list(self.task_manager.children.get(msg.task_id, ())):
                task = self.task_manager.get(child)
                if task is not None:
                    self.submitter.cancel(task, msg.force, True)
        return found

    def _handle_get_object(self, _conn: Connection, msg: m.GetObject) -> Any:
        oid = msg.object_id
        obj = self.memory_store.get(oid)
        if obj is not None:
            return m.ObjectStatus(oid, True, obj.inline, obj.node_id, obj.size, "")
        if not self.references.is_owned(oid):
            return m.ObjectStatus(oid, False, None, None, 0, "freed")
        if not msg.wait:
            return m.ObjectStatus(oid, False, None, None, 0, "")
        loop = self.io.loop
        reply: asyncio.Future[Any] = loop.create_future()

        def ready(o: StoredObject) -> None:
            status = m.ObjectStatus(oid, True, o.inline, o.node_id, o.size, "")
            loop.call_soon_threadsafe(_resolve, reply, status)

        self.memory_store.on_ready(oid, ready)
        return reply

    def _handle_exit(self, _conn: Connection, msg: m.ExitWorker) -> None:
        logger.info("exiting: %s", msg.reason)
        os._exit(0)

    async def _flush_and_exit(self) -> None:
        # Let queued replies reach their sockets before the process goes.
        for _ in range(3):
            await asyncio.sleep(0)
        for fut in self._peer_conns.values():
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                fut.result().close()
        if self._server is not None:
            self._server.close()
        await asyncio.sleep(0.05)
        os._exit(0)

    def exit_after_replies(self) -> None:
        """Exit the worker process once what it has sent is on the wire (max_calls)."""
        self.io.run(self._flush_and_exit(), timeout=10)
        os._exit(0)

    def _handle_published(self, _conn: Connection, msg: m.Published) -> None:
        if msg.channel == "logs" and isinstance(msg.payload, m.LogBatch):
            self._print_logs(msg.payload)
        elif msg.channel == "actor" and isinstance(msg.payload, m.ActorInfo):
            self.actor_submitter.on_info(msg.payload)

    def _print_logs(self, batch: m.LogBatch) -> None:
        # Ray's "(name pid=N" start, so tools that grep for it keep working, plus the node.
        where = f"pid={batch.pid}, node={batch.node_id.hex()[:8]}"
        if batch.node_id != self.node_id:
            where += f", ip={batch.host}"
        prefix = f"({batch.task_name} {where}) " if batch.task_name else f"({where}) "
        stream = sys.stderr if batch.is_err else sys.stdout
        try:
            stream.write("".join(prefix + line + "\n" for line in batch.lines))
            stream.flush()
        except (OSError, ValueError):
            pass

    # -- connections ----------------------------------------------------------------------------
    async def connect_worker(self, address: m.Address) -> Connection:
        """A pooled connection to another core worker."""
        key = address.for_peer_on(self.node_id)
        fut = self._peer_conns.get(key)
        if fut is not None and fut.done() and (fut.exception() is not None or fut.result().closed):
            fut = None
        if fut is None:
            fut = asyncio.ensure_future(
                connect(
                    key,
                    self.session.token,
                    self.dispatcher,
                    role="driver" if self.is_driver else "worker",
                    ident=bytes(self.worker_id),
                    max_frame_bytes=self.config.max_frame_bytes,
                )
            )
            self._peer_conns[key] = fut
        return await asyncio.shield(fut)

    def call_gcs(self, msg: Any, timeout: float = 30.0) -> Any:
        """A blocking gcs request from a non-I/O thread."""

        async def call() -> Any:
            conn = await self.gcs_connection()
            return await conn.call(msg)

        return self.io.run(call(), timeout)

    def call_node(self, msg: Any, timeout: float = 30.0) -> Any:
        """A blocking request to the local node daemon from a non-I/O thread."""

        async def call() -> Any:
            return await self.node_conn.call(msg)

        return self.io.run(call(), timeout)

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
        if spec.runtime_env and self._applied_env is None:
            self._apply_runtime_env(spec.runtime_env)
        if spec.actor_id is not None and not instance_ids:
            instance_ids = self.actor_instance_ids  # an actor's devices, from its creation
        gpus = instance_ids.get("GPU")
        if gpus is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        elif "GPU" in spec.resources:
            os.environ["CUDA_VISIBLE_DEVICES"] = ""
        return self._context.set(
            TaskContext(spec.task_id, spec.job_id, spec.name, spec.resources, instance_ids, depth=spec.depth)
        )

    def _apply_runtime_env(self, env: dict[str, Any]) -> None:
        # A worker serves one runtime environment for its whole life (the node daemon
        # keys its pool by it), so the environment is applied once, at the first task.
        self._applied_env = self.runtime_env_key(env)
        os.environ.update(env.get("env_vars") or {})
        for module in env.get("py_modules") or []:
            parent = os.path.dirname(os.path.abspath(module))
            if parent not in sys.path:
                sys.path.insert(0, parent)
        working_dir = env.get("working_dir")
        if working_dir:
            os.chdir(working_dir)
            sys.path.insert(0, os.path.abspath(working_dir))

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
        self._jobs_set_up.add(job_id)

    # -- objects ----------------------------------------------------------------------------------
    def put(self, value: Any) -> ObjectRef:
        self.collect_references()
        try:
            obj = serialization.serialize(value)
        except Exception as e:
            raise TypeError(
                f"Could not serialize the object {_short_repr(value)} of type {type(value).__name__}: {e}"
            ) from e
        return self.put_serialized(obj)

    def put_serialized(self, obj: serialization.SerializedObject) -> ObjectRef:
        ctx = self.context
        oid = ObjectID.for_put(ctx.task_id, next(ctx.put_counter))
        if obj.contained_refs:
            self.references.mark_escaped([r.id for r in obj.contained_refs])
        self.references.add_owned(oid)
        size = obj.total_size
        if size < self.config.max_inline_bytes:
            blob = serialization.to_inline(obj)
            self.memory_store.put(oid, StoredObject(blob, None, len(blob), obj.is_error()))
        else:
            size = self._write_store(oid, obj, self.worker_id)
            self.memory_store.put(oid, StoredObject(None, self.node_id, size, obj.is_error()))
        return ObjectRef(oid, self.address)

    def store_return(
        self, object_id: ObjectID, obj: serialization.SerializedObject, owner: WorkerID
    ) -> m.ReturnObject:
        """A task's return value: inline if small, else into this node's store."""
        if obj.contained_refs:
            self.references.mark_escaped([r.id for r in obj.contained_refs])
        if obj.total_size < self.config.max_inline_bytes:
            blob = serialization.to_inline(obj)
            return m.ReturnObject(object_id, blob, len(blob), None)
        size = self._write_store(object_id, obj, owner)
        return m.ReturnObject(object_id, None, size, self.node_id)

    def _write_store(self, object_id: ObjectID, obj: serialization.SerializedObject, owner: WorkerID) -> int:
        size = serialization.write_store_file(self._store_path(object_id), obj)
        self.io.call_soon(self.node_conn.notify, m.ObjectSealed(object_id, size, owner))
        return size

    def _store_path(self, object_id: ObjectID) -> str:
        return os.path.join(self.session.store_dir, object_id.hex())

    def free_store_copies(self, returns: list[m.ReturnObject]) -> None:
        ids = [r.object_id for r in returns if r.node_id is not None]
        if ids:
            self.io.call_soon(self.node_conn.notify, m.FreeObjects(ids))

    def arg_value(self, ref: ObjectRef) -> m.ArgValue:
        """A ready object as a resolved argument."""
        obj = self.memory_store.get(ref.id)
        if obj is None:
            raise ObjectFreedError(ref.hex())
        return m.ArgValue(ref.id, obj.inline, obj.node_id, obj.size)

    def collect_references(self) -> None:
        self.actors.collect()
        freed = self.references.collect()
        if not freed:
            return
        in_store = []
        for f in freed:
            obj = self.memory_store.get(f.object_id)
            if f.owned and obj is not None and obj.node_id is not None:
                in_store.append(f.object_id)
        self.memory_store.delete(f.object_id for f in freed)
        if in_store:
            self.io.call_soon(self.node_conn.notify, m.FreeObjects(in_store))

    def _periodic_collect(self) -> None:
        if self._closed:
            return
        self.collect_references()
        self.io.loop.call_later(_COLLECT_INTERVAL_S, self._periodic_collect)

    def request_object(self, ref: ObjectRef) -> None:
        """Make sure the object will arrive in the memory store (fetch it if borrowed)."""
        oid = ref.id
        if self.memory_store.contains(oid) or self.references.is_owned(oid) or oid in self._fetching:
            return
        owner = ref.owner_address()
        if owner is None or owner.worker_id == self.worker_id:
            self.memory_store.put(oid, self._error_object(ObjectFreedError(oid.hex())))
            return
        self._fetching.add(oid)
        self.io.call_soon(self._start_fetch, oid, owner)

    def _start_fetch(self, oid: ObjectID, owner: m.Address) -> None:
        spawn(self._fetch(oid, owner), "fetching an object from its owner")

    async def _fetch(self, oid: ObjectID, owner: m.Address) -> None:
        try:
            conn = await self.connect_worker(owner)
            status = await conn.call(m.GetObject(oid, True))
        except (ConnectionLost, OSError) as e:
            detail = str(e)
            if owner.pid == os.getpid():
                detail = (
                    "It belongs to an earlier session of this process: manta.shutdown() ends a "
                    "session and frees the objects it owned."
                )
            error: RayError = OwnerDiedError(
                oid.hex(), f"{owner.host}:{owner.port} pid={owner.pid}", detail=detail
            )
            self.memory_store.put(oid, self._error_object(error))
            return
        except Exception as e:
            self.memory_store.put(oid, self._error_object(ObjectLostError(oid.hex(), detail=str(e))))
            return
        finally:
            self._fetching.discard(oid)
        if status.missing:
            self.memory_store.put(oid, self._error_object(ObjectFreedError(oid.hex())))
            return
        is_error = status.inline is not None and self.is_error_blob(status.inline)
        self.memory_store.put(oid, StoredObject(status.inline, status.node_id, status.size, is_error))

    @staticmethod
    def _error_object(error: BaseException) -> StoredObject:
        blob = serialization.to_inline(serialization.serialize(error, serialization.FLAG_ERROR))
        return StoredObject(blob, None, len(blob), True)

    @staticmethod
    def is_error_blob(blob: bytes) -> bool:
        return bool(serialization.inline_flags(blob) & serialization.FLAG_ERROR)

    def get(self, refs: list[ObjectRef], timeout: float | None) -> list[Any]:
        self.collect_references()
        self._wait_ready(refs, len({r.id for r in refs}), timeout, for_get=True)
        return [self._materialize(r) for r in refs]

    def wait(
        self, refs: list[ObjectRef], num_returns: int, timeout: float | None, fetch_local: bool
    ) -> set[ObjectID]:
        return self._wait_ready(refs, num_returns, timeout, for_get=False)

    def _wait_ready(
        self, refs: list[ObjectRef], num_ready: int, timeout: float | None, for_get: bool
    ) -> set[ObjectID]:
        ids = [r.id for r in refs]
        missing = [r for r in refs if not self.memory_store.contains(r.id)]
        if len(refs) - len(missing) >= num_ready:
            return {i for i in ids if self.memory_store.contains(i)}
        for ref in missing:
            self.request_object(ref)
        blocked = self._notify_blocked()
        try:
            ready = self.memory_store.wait(ids, num_ready, timeout)
        finally:
            if blocked:
                self._notify_unblocked()
        if for_get and len(ready) < num_ready:
            raise GetTimeoutError(
                f"Get timed out: {num_ready - len(ready)} of {num_ready} object(s) not ready "
                f"after {timeout} s."
            )
        return ready

    def _notify_blocked(self) -> bool:
        # A task blocked in get/wait lends its CPU back so nested tasks can run.
        if self.is_driver or self._context.get() is None:
            return False
        self._blocked_depth += 1
        if self._blocked_depth == 1:
            self.io.call_soon(self.node_conn.notify, m.WorkerBlocked())
        return True

    def _notify_unblocked(self) -> None:
        self._blocked_depth -= 1
        if self._blocked_depth == 0:
            self.io.call_soon(self.node_conn.notify, m.WorkerUnblocked())

    def _materialize(self, ref: ObjectRef) -> Any:
        obj = self.memory_store.get(ref.id)
        if obj is None:  # freed between the wait and now
            raise ObjectFreedError(ref.hex())
        value = self._load(obj, ref.id)
        if obj.is_error:
            if isinstance(value, RayTaskError):
                raise value.as_instanceof_cause()
            if isinstance(value, BaseException):
                raise value
        return value

    def _load(self, obj: StoredObject | m.ArgValue, object_id: ObjectID) -> Any:
        if obj.inline is not None:
            return serialization.from_inline(obj.inline)
        if obj.node_id != self.node_id:
            raise ObjectLostError(
                object_id.hex(),
                detail="it lives on another node, and cross-node transfer is not available yet",
            )
        try:
            _flags, data, buffers = serialization.read_store_file(self._store_path(object_id))
        except FileNotFoundError:
            raise ObjectFreedError(object_id.hex()) from None
        return serialization.deserialize(data, buffers)

    def load_args(self, spec: m.TaskSpec) -> tuple[tuple[Any, ...], dict[str, Any]]:
        values = [self._load(arg, arg.object_id) for arg in spec.ref_args]
        return argpack.unpack(spec.args, values)

    def object_future(self, ref: ObjectRef) -> Any:
        import concurrent.futures

        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.request_object(ref)

        def ready(obj: StoredObject) -> None:
            if future.cancelled():
                return
            try:
                value = self._materialize(ref)
            except BaseException as e:
                future.set_exception(e)
            else:
                future.set_result(value)

        self.memory_store.on_ready(ref.id, ready)
        return future

    # -- tasks ---------------------------------------------------------------------------------
    def submit_task(
        self,
        *,
        function_id: bytes,
        function_name: str,
        name: str,
        args: tuple[Any, ...],
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
    ) -> list[ObjectRef]:
        self.collect_references()
        ctx = self.context
        task_id = TaskID.for_normal_task(self.job_id) if actor_id is None else TaskID.for_actor_task(actor_id)
        blob, ref_args, nested = argpack.pack(
            args,
            kwargs,
            max_inline=self.config.max_inline_bytes,
            put=self.put_serialized,
            describe=f"the task {function_name}",
        )
        if nested:
            self.references.mark_escaped([r.id for r in nested])
        return_ids = [ObjectID.for_return(task_id, i) for i in range(num_returns)]
        for oid in return_ids:
            self.references.add_owned(oid)
        refs = [ObjectRef(oid, self.address) for oid in return_ids]
        if ref_args:
            self.references.add_submitted([r.id for r in ref_args])
        spec = m.TaskSpec(
            task_id=task_id,
            job_id=self.job_id,
            parent_task_id=ctx.task_id,
            name=name,
            function_id=function_id,
            function_name=function_name,
            args=blob,
            ref_args=[],
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
        )
        sched_key = (
            tuple(sorted(resources.items())),
            self.runtime_env_key(runtime_env),
            _strategy_key(strategy),
        )
        task = PendingTask(spec, return_ids, ref_args, max_retries, retry_exceptions, sched_key, strategy)
        self.task_manager.add(task)
        self._hand_to_io(task)
        return refs

    def _hand_to_io(self, task: PendingTask) -> None:
        self._inbox.append(task)
        if not self._inbox_scheduled:
            self._inbox_scheduled = True
            self.io.call_soon(self._drain_inbox)

    def _drain_inbox(self) -> None:
        self._inbox_scheduled = False
        inbox = self._inbox
        while inbox:
            task = inbox.popleft()
            if task.spec.actor_id is None:
                self.submitter.submit(task)
            else:
                self.actor_submitter.submit(task)

    def cancel(self, ref: ObjectRef, force: bool, recursive: bool) -> None:
        task = self.task_manager.get(ref.task_id())
        if task is not None:
            self.io.call_soon(self.submitter.cancel, task, force, recursive)

    @staticmethod
    def runtime_env_key(runtime_env: dict[str, Any] | None) -> str:
        return runtime_env_key(runtime_env)

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


def _strategy_key(strategy: Any) -> Any:
    if strategy is None or isinstance(strategy, str):
        return strategy
    return json.dumps(strategy, sort_keys=True, default=str)


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _resolve(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)
