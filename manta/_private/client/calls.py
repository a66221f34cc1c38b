"""A remote driver's operations (api/client_ops.py) carried out on its session's core
worker, and how their arguments and answers cross the client port (refs and actor handles
counted on the way).

Runs on the session's threads: ``start`` and ``prepare`` on the calls thread (in the order
the client sent), ``run`` there too or, for operations that wait, on a thread of their own.
"""

from __future__ import annotations

import logging
import pickle
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from manta._private.api import client_ops as ops
from manta._private.api import client_wire as wire
from manta._private.common.config import Config
from manta._private.common.ids import ActorID, ObjectID, TaskID
from manta._private.core_worker.object_ref_generator import ObjectRefGenerator
from manta._private.gcs.access_shell import USER_REQUESTS
from manta._private.rpc import messages as m
from manta._private.rpc.auth import allows
from manta.exceptions import PermissionDeniedError, RaySystemError

logger = logging.getLogger("manta.client")

# The gcs requests a remote driver's API calls make beyond what user roles may ask the
# gcs directly (USER_REQUESTS): what a local driver does with placement groups and actors.
DRIVER_REQUESTS: dict[type, str] = {
    **USER_REQUESTS,
    m.CreatePlacementGroup: "submit",
    m.RemovePlacementGroup: "submit",
    m.WaitPlacementGroup: "read",
    m.KillActor: "submit",
}

# What a session takes from its client's init(): the job's namespace and settings (see
# api.context._job_settings), and whether to print its workers' output.
INIT_OPTIONS = frozenset({"namespace", "job_config", "log_to_driver"})
JOB_SETTINGS = frozenset({"entrypoint", "submission_id", "logging_config", "metadata"})


@dataclass(frozen=True, slots=True)
class Result:
    ok: bool
    payload: bytes
    buffers: list[memoryview]


class Calls:
    """The session's core worker as the client sees it."""

    def __init__(self, worker: Any, role: str) -> None:
        self._cw = worker
        self._role = role
        # What the client holds, counted here: refs by id, actor handles by actor id.
        self._refs: dict[ObjectID, int] = {}
        self._actors: dict[ActorID, int] = {}
        # The returns of submissions that failed here, with why: what getting them raises.
        self._failed: dict[ObjectID, Exception] = {}
        # The client's streaming generator tasks, read here on its behalf.
        self._generators: dict[TaskID, ObjectRefGenerator] = {}
        self._lock = threading.Lock()

    @classmethod
    def start(cls, head_session_dir: str, config: Config, msg: m.ClientOpen) -> tuple[Calls, bytes]:
        """Join the cluster as the client's driver; the facts the client mirrors."""
        from manta._private.api import context

        options = pickle.loads(msg.options)
        if not isinstance(options, dict) or set(options) - INIT_OPTIONS:
            raise ValueError(f"a remote driver's init() options are {sorted(INIT_OPTIONS)}")
        if not isinstance(options.get("job_config"), dict) or set(options["job_config"]) - JOB_SETTINGS:
            raise ValueError(f"a remote driver's job settings are {sorted(JOB_SETTINGS)}")
        worker = context.attach_driver(head_session_dir, options, config)
        info = {
            "job_id": worker.job_id,
            "namespace": worker.namespace,
            "node_id": worker.node_id,
            "worker_id": worker.worker_id,
            "address": worker.address,
            "session_dir": worker.session.session_dir,
            "node_ip": worker.session.host,
            "task_max_retries": worker.config.task_max_retries,
            "tmpdir": worker.config.tmpdir,
            "job_runtime_env": worker.job_runtime_env,
            "grace_s": worker.config.client_grace_s,
            "heartbeat_s": worker.config.client_heartbeat_s,
        }
        logger.info("session of a remote driver (role %s) is job %s", msg.role, worker.job_id.hex())
        return cls(worker, msg.role), pickle.dumps(info)

    def prepare(self, msg: m.ClientCall, buffers: list[Any]) -> ops.Operation | Result:
        """Apply the call's holds and releases, then load its operation; a Result when it
        cannot run (its error, for the client)."""
        try:
            self._apply(msg.ops)
            op = wire.loads(msg.payload, buffers, self._load_id)
            if not isinstance(op, ops.Operation):
                raise TypeError(f"a remote driver's call must carry an operation, not {type(op).__name__}")
            if isinstance(op, ops.AskGcs):
                self._check_gcs_request(op.msg)
            elif isinstance(op, (ops.Get, ops.Wait)):
                self._raise_if_failed(op.refs)
        except Exception as e:
            for raw in msg.returns:  # a submission: getting its returns raises this
                self._failed[ObjectID(raw)] = e
            return self._error(e)
        return op

    def run(self, op: ops.Operation) -> Result:
        try:
            value = self._perform(op)
        except Exception as e:
            return self._error(e)
        try:
            payload, buffers = wire.dumps(value, self._send_id)
        except Exception as e:
            return self._error(
                RaySystemError(f"the result of {type(op).__name__} cannot be sent to the client: {e}")
            )
        return Result(True, payload, buffers)

    def _perform(self, op: ops.Operation) -> Any:
        cw = self._cw
        match op:
            case ops.SubmitTask() | ops.CallActor():
                return self._submit(op)
            case ops.Get(refs, timeout):
                return [ops.Value.of(obj) for obj in cw.objects.get_serialized(refs, timeout)]
            case ops.Wait(refs, num_returns, timeout, fetch_local, stream_ids):
                return cw.objects.wait(refs, num_returns, timeout, fetch_local, stream_ids)
            case ops.Put(value):
                cw.objects.collect_references()  # as a local put does: releases applied first
                return cw.objects.put_serialized(value.serialized())
            case ops.CreateActor(spec, args, get_if_exists):
                return cw.actors.create(spec, args, {}, get_if_exists)
            case ops.LookupActor(name, namespace):
                return cw.actors.lookup(name, namespace)
            case ops.KillActor(actor_id, no_restart):
                return cw.actors.kill(actor_id, no_restart)
            case ops.ListNamedActors(namespace, all_namespaces):
                return cw.actors.list_named(namespace, all_namespaces)
            case ops.ExportFunction(job_id, function_id, pickled):
                return cw.functions.export(job_id, function_id, pickled)
            case ops.Cancel(ref, force, recursive):
                return cw.cancel(ref, force, recursive)
            case ops.AskGcs(msg):
                return cw.call_gcs(msg)
            case ops.NextItem(task_id, timeout):
                return self._next_item(task_id, timeout)
            case ops.ItemReady(task_id):
                return self._generator(task_id).next_ready()
            case ops.StreamFinished(task_id):
                return self._generator(task_id).is_finished()
            case ops.NextItemId(task_id):
                return self._generator(task_id)._next_id()
            case ops.GatherState(work, timeout):
                from manta.util.state._source import gather

                return gather(None, work, timeout)
            case ops.MemoryReport():
                from manta._private.api.memory import memory_report

                return memory_report()
            case ops.Nothing() | ops.EndSession():
                return None
        raise TypeError(f"{type(op).__name__} is not something a remote driver can ask for")

    def _submit(self, op: ops.SubmitTask | ops.CallActor) -> None:
        """A submission the client does not wait for: it made the refs of the returns."""
        options = op.options
        try:
            if isinstance(op, ops.SubmitTask):
                refs = self._cw.submit_task(task_id=op.task_id, **options)
            else:
                refs = self._cw.actors.call(
                    op.actor_id, op.method, op.args, {}, task_id=op.task_id, **options
                )
        except Exception as e:
            for i in range(options["num_returns"]):
                self._failed[ObjectID.for_return(op.task_id, i)] = e
            raise
        for ref in refs:  # the client made its copies of these refs already
            self._hold_ref(ref.id, ref.owner_address())
        if options.get("generator") == m.GENERATOR_STREAMING:
            self._generators[op.task_id] = self._cw.stream_of(refs[0])

    def _raise_if_failed(self, refs: Any) -> None:
        if self._failed:
            for ref in refs:
                error = self._failed.get(getattr(ref, "id", None))  # type: ignore[arg-type]
                if error is not None:
                    raise error

    def _next_item(self, task_id: TaskID, timeout_s: float | None) -> tuple[str, Any]:
        """("item", ref), ("error", the ref holding the task's error), ("none", None) when
        nothing came within ``timeout_s``, or ("end", None)."""
        gen = self._generator(task_id)
        try:
            ref = gen._next_sync(timeout_s)
        except StopIteration:
            return "end", None
        if ref.is_nil():
            return "none", None
        return ("error" if gen._generator_task_exception is not None else "item"), ref

    def _generator(self, task_id: TaskID) -> ObjectRefGenerator:
        gen = self._generators.get(task_id)
        if gen is None:
            raise ValueError(f"no generator task {task_id.hex()} of this client is being read")
        return gen

    def error(self, error: BaseException) -> Result:
        """``error`` as the call's answer (what the client raises)."""
        return self._error(error if isinstance(error, Exception) else RaySystemError(repr(error)))

    def _error(self, error: Exception) -> Result:
        try:
            payload, buffers = wire.dumps(error, self._send_id)
        except Exception:  # an exception that does not pickle: its text does
            payload, buffers = wire.dumps(RaySystemError(f"{type(error).__name__}: {error}"), self._send_id)
        return Result(False, payload, buffers)

    def _check_gcs_request(self, msg: Any) -> None:
        needed = DRIVER_REQUESTS.get(type(msg))
        if needed is None or not allows(self._role, needed):
            raise PermissionDeniedError(
                f"{type(msg).__name__} is not open to a remote driver with the {self._role!r} role"
            )

    # -- what the client holds -------------------------------------------------------
    def _send_id(self, obj: Any) -> Any:
        """A ref or actor handle going to the client: held here until it says it let go."""
        from manta._private.api.actor import ActorHandle
        from manta._private.core_worker.object_ref import ObjectRef

        if type(obj) is ObjectRef:
            self._hold_ref(obj.id, obj.owner_address())
            return ("r", bytes(obj.id), obj.owner_address())
        if isinstance(obj, ActorHandle):
            self._hold_actor(obj._actor_id)
            return (
                "a",
                bytes(obj._actor_id),
                obj._class_name,
                obj._methods,
                obj._max_task_retries,
                obj._is_async,
            )
        return None

    # Counted from the calls thread and the threads of waiting calls (a `get`'s answer).
    def _hold_ref(self, object_id: ObjectID, owner: Any) -> None:
        self._cw.references.add_local(object_id, owner)
        with self._lock:
            self._refs[object_id] = self._refs.get(object_id, 0) + 1

    def _hold_actor(self, actor_id: ActorID) -> None:
        self._cw.actors.add_handle(actor_id)
        with self._lock:
            self._actors[actor_id] = self._actors.get(actor_id, 0) + 1

    def _load_id(self, pid: Any) -> Any:
        from manta._private.core_worker.object_ref import ObjectRef

        if not isinstance(pid, tuple) or len(pid) != 3 or pid[0] != "r" or not isinstance(pid[1], bytes):
            raise ValueError(f"unknown persistent id in a client's call: {pid!r}")
        return ObjectRef(ObjectID(pid[1]), pid[2])

    def _apply(self, ops: list[list[Any]]) -> None:
        """Holds and releases the client made since its last call, in order."""
        from manta._private.core_worker.object_ref import ObjectRef

        # Refs of other owners the client found inside values it loaded: borrowed here, as a
        # local driver's get borrows them, before any release after them is applied (the
        # value holding them, released, would no longer keep them alive).
        borrowed: list[ObjectRef] = []
        for op in ops:
            kind, raw = op[0], op[1]
            if kind != "hr" and borrowed:
                self._cw.borrowing.register_loaded(borrowed)
                borrowed = []
            if kind == "r":
                object_id = ObjectID(raw)
                self._release(self._refs, object_id, int(op[2]), self._cw.references.drop_local)
                self._failed.pop(object_id, None)
            elif kind == "a":
                self._release(self._actors, ActorID(raw), int(op[2]), self._cw.actors.drop_handle)
            elif kind == "hr":
                if op[2] is not None and not isinstance(op[2], m.Address):
                    raise ValueError(f"a hold names its owner by address, not {type(op[2]).__name__}")
                self._hold_ref(ObjectID(raw), op[2])
                if op[2] is not None and op[2].worker_id != self._cw.worker_id:
                    borrowed.append(ObjectRef(ObjectID(raw), op[2]))
            elif kind == "ha":
                self._hold_actor(ActorID(raw))
            elif kind == "g":
                self._generators.pop(TaskID(raw), None)
            else:
                raise ValueError(f"unknown reference operation {kind!r}")
        if borrowed:
            self._cw.borrowing.register_loaded(borrowed)

    def _release(self, held: dict[Any, int], key: Any, count: int, drop: Callable[[Any], None]) -> None:
        with self._lock:
            had = held.get(key, 0)
            if count > had:  # a client's bug, or another client's ids: never more than it holds
                logger.warning("the client released %d references to %s, but holds %d", count, key.hex(), had)
            count = min(max(count, 0), had)
            if had - count:
                held[key] = had - count
            else:
                held.pop(key, None)
        for _ in range(count):
            drop(key)

    def holdings(self) -> tuple[int, int]:
        """How many refs and actor handles the client holds here."""
        return len(self._refs), len(self._actors)

    def shutdown(self) -> None:
        from manta._private.api import context

        refs, actors = self.holdings()
        logger.info("remote driver's session ends: releasing %d refs and %d actor handles", refs, actors)
        context.shutdown()
