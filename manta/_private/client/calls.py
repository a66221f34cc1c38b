"""What a remote driver may ask its session's core worker to do, and how each call's
arguments and answer cross the client port (refs and actor handles counted on the way).

Runs on the session's threads: ``start`` and ``prepare`` on the calls thread (in the order
the client sent), ``run`` there too or, for calls that wait, on a thread of their own.
"""

from __future__ import annotations

import logging
import operator
import pickle
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from manta._private.api import client_wire as wire
from manta._private.common.config import Config
from manta._private.common.ids import ActorID, ObjectID, TaskID
from manta._private.core_worker.object_ref_generator import ObjectRefGenerator
from manta._private.gcs.access_shell import USER_REQUESTS
from manta._private.rpc import messages as m
from manta._private.rpc.auth import allows
from manta.exceptions import PermissionDeniedError, RaySystemError

logger = logging.getLogger("manta.client")

# The core worker's methods a remote driver calls, and whether each may wait (a call
# that waits runs beside the others, so a `get` does not hold back a later `remote()`).
METHODS: dict[str, bool] = {
    "functions.export": False,
    "actors.create": False,
    "actors.lookup": False,
    "actors.kill": False,
    "actors.list_named": False,
    "objects.put": False,
    "objects.get": True,
    "objects.wait": True,
    "cancel": False,
    "call_gcs": False,
    "ping": False,
    "shutdown": False,
    # A streaming generator's items, read here for the client (see RemoteObjectRefGenerator).
    "generator_next": True,
    "generator_ready": False,
    "generator_next_id": False,
    "generator_finished": False,
    "generator_drop": False,
    # The state API's gathering (manta.util.state) and memory report, done here for the client.
    "state_gather": True,
    "memory_report": True,
}

# Submissions the client does not wait for: it chose the task's id and made the refs of
# its returns itself, which the session holds for it from the moment it submits.
PIPELINED = frozenset({"submit_task", "actors.call"})

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


@dataclass(frozen=True, slots=True)
class Prepared:
    method: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    waits: bool = False


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

    def prepare(self, msg: m.ClientCall, buffers: list[Any]) -> Prepared | Result:
        """Apply the call's holds and releases, then load its arguments; a Result when it
        cannot run (its error, for the client)."""
        try:
            self._apply(msg.ops)
            if msg.method not in METHODS and msg.method not in PIPELINED:
                raise ValueError(f"{msg.method!r} is not something a remote driver can ask for")
            args, kwargs = wire.loads(msg.payload, buffers, self._load_id)
            if msg.method == "call_gcs":
                self._check_gcs_request(args[0])
            elif msg.method in ("objects.get", "objects.wait"):
                self._raise_if_failed(args[0])
            fn = self._bound(msg.method)
        except Exception as e:
            for raw in msg.returns:  # a submission: getting its returns raises this
                self._failed[ObjectID(raw)] = e
            return self._error(e)
        if msg.method in PIPELINED:
            return Prepared(msg.method, self._submitting(fn), tuple(args), dict(kwargs))
        return Prepared(msg.method, fn, tuple(args), dict(kwargs), METHODS[msg.method])

    def _submitting(self, submit: Callable[..., Any]) -> Callable[..., None]:
        def run(*args: Any, **kwargs: Any) -> None:
            task_id, num_returns = kwargs["task_id"], kwargs["num_returns"]
            try:
                refs = submit(*args, **kwargs)
            except Exception as e:
                for i in range(num_returns):
                    self._failed[ObjectID.for_return(task_id, i)] = e
                raise
            for ref in refs:  # the client made its copies of these refs already
                self._hold_ref(ref.id, ref.owner_address())
            if kwargs.get("generator") == m.GENERATOR_STREAMING:
                self._generators[task_id] = self._cw.stream_of(refs[0])

        return run

    def _raise_if_failed(self, refs: Any) -> None:
        if self._failed:
            for ref in refs:
                error = self._failed.get(getattr(ref, "id", None))  # type: ignore[arg-type]
                if error is not None:
                    raise error

    def _bound(self, method: str) -> Callable[..., Any]:
        if method in ("ping", "shutdown"):
            return lambda: None
        if method == "state_gather":
            from manta.util.state._source import gather

            return lambda work, timeout: gather(None, work, timeout)
        if method == "memory_report":
            from manta._private.api.memory import memory_report

            return memory_report
        if method.startswith("generator_"):
            return getattr(self, "_" + method)  # type: ignore[no-any-return]
        return operator.attrgetter(method)(self._cw)  # type: ignore[no-any-return]

    def _generator_next(self, task_id: TaskID, timeout_s: float | None) -> tuple[str, Any]:
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

    def _generator_next_id(self, task_id: TaskID) -> ObjectID:
        return self._generator(task_id)._next_id()  # type: ignore[no-any-return]

    def _generator_ready(self, task_id: TaskID) -> bool:
        return self._generator(task_id).next_ready()

    def _generator_finished(self, task_id: TaskID) -> bool:
        return self._generator(task_id).is_finished()

    def _generator_drop(self, task_id: TaskID) -> None:
        self._generators.pop(task_id, None)

    def _generator(self, task_id: TaskID) -> ObjectRefGenerator:
        gen = self._generators.get(task_id)
        if gen is None:
            raise ValueError(f"no generator task {task_id.hex()} of this client is being read")
        return gen

    def run(self, call: Prepared) -> Result:
        try:
            value = call.fn(*call.args, **call.kwargs)
        except Exception as e:
            return self._error(e)
        try:
            payload, buffers = wire.dumps(value, self._send_id)
        except Exception as e:
            return self._error(
                RaySystemError(f"the result of {call.method} cannot be sent to the client: {e}")
            )
        return Result(True, payload, buffers)

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
        for op in ops:
            kind, raw = op[0], op[1]
            if kind == "r":
                object_id = ObjectID(raw)
                self._release(self._refs, object_id, int(op[2]), self._cw.references.drop_local)
                self._failed.pop(object_id, None)
            elif kind == "a":
                self._release(self._actors, ActorID(raw), int(op[2]), self._cw.actors.drop_handle)
            elif kind == "hr":
                self._hold_ref(ObjectID(raw), op[2])
            elif kind == "ha":
                self._hold_actor(ActorID(raw))
            elif kind == "g":
                self._generators.pop(TaskID(raw), None)
            else:
                raise ValueError(f"unknown reference operation {kind!r}")

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
