"""The core worker of a remote driver: ``init("manta://head:10001")`` on a machine with no
Manta node. It has the parts of a core worker the API uses (``submit_task``,
``actors``, ``objects``, ``call_gcs``, ...), and each forwards to the driver's *session*
on the head, which does the same on a real core worker and owns what it makes.

Refs and actor handles here are counted here; the session holds one reference for each
one it sent until this process drops its last copy, which the next call (or, when idle,
a flush within 0.1 s) tells it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from manta._private import serialization
from manta._private.api import client_ops as ops
from manta._private.api import client_wire as wire
from manta._private.api.client_channel import ClientChannel
from manta._private.api.client_holds import Holds
from manta._private.common.config import Config
from manta._private.common.ids import ActorID, ObjectID, TaskID
from manta._private.core_worker import args as argpack
from manta._private.core_worker import object_ref as object_ref_module
from manta._private.core_worker.object_manager import serialize_put_value
from manta._private.core_worker.object_ref import ObjectRef
from manta._private.core_worker.object_ref_generator import ObjectRefGenerator
from manta._private.rpc import messages as m
from manta._private.rpc.messages import Address


@dataclass(frozen=True)
class RemoteSession:
    """What ``worker.session`` says of a remote driver: the head's session, seen from afar."""

    session_dir: str
    gcs_address: str
    host: str
    token: bytes = b""


@dataclass
class _DriverContext:
    placement_group: Any = None  # a driver runs in no placement group


class _References:
    def __init__(self, counts: Holds) -> None:
        self._counts = counts

    def add_local(self, object_id: ObjectID, owner: Address | None) -> None:
        self._counts.add(("r", object_id), owner)

    def drop_local(self, object_id: ObjectID) -> None:
        self._counts.drop(("r", object_id))

    def pin(self, object_id: ObjectID, owner: Address | None) -> None:
        self._counts.add(("r", object_id), owner)  # never dropped: held while this process lives


class _Borrowing:
    """A ref pickled outside Manta here (plain pickle) stays held while this process lives:
    the session cannot know when another process loads it."""

    def __init__(self, counts: Holds) -> None:
        self._counts = counts

    def hold_out_of_band(self, ref: ObjectRef) -> None:
        self._counts.add(("r", ref.id), ref.owner_address())

    def adopt_out_of_band(self, ref: ObjectRef, holder: Address) -> None:
        pass


class _Objects:
    """Values are serialized and loaded here, never by the session (client_ops.Value)."""

    def __init__(self, driver: RemoteDriver) -> None:
        self._driver = driver

    def get(self, refs: list[ObjectRef], timeout: float | None) -> list[Any]:
        values: list[ops.Value] = self._driver.call(ops.Get(refs, timeout))
        return [value.load() for value in values]

    def put(self, value: Any) -> ObjectRef:
        return self.put_serialized(serialize_put_value(value))

    def put_serialized(self, obj: serialization.SerializedObject) -> ObjectRef:
        return self._driver.call(ops.Put(ops.Value.of(obj)))  # type: ignore[no-any-return]

    def wait(
        self,
        refs: list[ObjectRef],
        num_returns: int,
        timeout: float | None,
        fetch_local: bool,
        stream_ids: Any,
    ) -> set[ObjectID]:
        wait = ops.Wait(refs, num_returns, timeout, fetch_local, tuple(stream_ids))
        return self._driver.call(wait)  # type: ignore[no-any-return]

    def object_future(self, ref: ObjectRef) -> concurrent.futures.Future[Any]:
        return self._driver.call_future(ops.Get([ref], None), then=lambda values: values[0].load())

    def call_site(self, object_id: ObjectID) -> str:
        return ""

    def collect_references(self) -> None:
        pass


class _Actors:
    def __init__(self, driver: RemoteDriver, counts: Holds) -> None:
        self._driver = driver
        self._counts = counts

    def create(self, spec: Any, args: Any, kwargs: Any, get_if_exists: bool) -> Any:
        packed = self._driver.pack(args, kwargs, f"the actor {spec.module}.{spec.class_name}.__init__")
        return self._driver.call(ops.CreateActor(spec, packed, get_if_exists))

    def call(self, actor_id: ActorID, method: str, args: Any, kwargs: Any, **options: Any) -> list[ObjectRef]:
        task_id = TaskID.for_actor_task(actor_id)
        packed = self._driver.pack(args, kwargs, f"the task {options['function_name']}")
        return self._driver.submit(ops.CallActor(task_id, actor_id, method, packed, options), options)

    def lookup(self, name: str, namespace: str) -> Any:
        return self._driver.call(ops.LookupActor(name, namespace))

    def kill(self, actor_id: ActorID, no_restart: bool) -> None:
        self._driver.call(ops.KillActor(actor_id, no_restart))

    def list_named(self, namespace: str, all_namespaces: bool) -> list[tuple[str, str]]:
        return self._driver.call(ops.ListNamedActors(namespace, all_namespaces))  # type: ignore[no-any-return]

    def add_handle(self, actor_id: ActorID) -> None:
        self._counts.add(("a", actor_id))

    def drop_handle(self, actor_id: ActorID) -> None:
        self._counts.drop(("a", actor_id))

    def handle_escaped(self, actor_id: ActorID) -> None:
        pass  # the session sees the handle arrive in the call that carries it


class _Functions:
    def __init__(self, driver: RemoteDriver) -> None:
        self._driver = driver
        self._exported: set[tuple[Any, bytes]] = set()

    def export(self, job_id: Any, function_id: bytes, pickled: bytes, original: Any = None) -> None:
        if (job_id, function_id) not in self._exported:
            self._driver.call(ops.ExportFunction(job_id, function_id, pickled))
            self._exported.add((job_id, function_id))


class RemoteDriver:
    """Stands where a driver's ``CoreWorker`` stands (``api.context.current_worker()``)."""

    is_driver = True
    is_remote = True
    actor_id = None
    executor = None

    def __init__(
        self, channel: ClientChannel, holds: Holds, info: dict[str, Any], config: Config, address: str
    ) -> None:
        self._channel = channel
        self._counts = self.holds = holds
        self.job_id = info["job_id"]
        self.namespace: str = info["namespace"]
        self.node_id = info["node_id"]
        self.worker_id = info["worker_id"]
        self.address: Address = info["address"]
        self.config = config.replace(task_max_retries=info["task_max_retries"])
        self.session = RemoteSession(info["session_dir"], address, info["node_ip"])
        self.context = _DriverContext()
        self.job_runtime_env: dict[str, Any] | None = info["job_runtime_env"]
        self.resolved_runtime_envs: dict[str, Any] = {}
        self.submission_envs: dict[int, Any] = {}
        self.references = _References(self._counts)
        self.borrowing = _Borrowing(self._counts)
        self.objects = _Objects(self)
        self.actors = _Actors(self, self._counts)
        self.functions = _Functions(self)
        self.closed = False

    @property
    def io(self) -> Any:
        return self._channel.io

    # -- what the API calls ----------------------------------------------------------
    def submit_task(self, **kwargs: Any) -> list[ObjectRef]:
        task_id = TaskID.for_normal_task(self.job_id)
        kwargs["args"] = self.pack(kwargs["args"], kwargs["kwargs"], f"the task {kwargs['function_name']}")
        kwargs["kwargs"] = {}
        return self.submit(ops.SubmitTask(task_id, kwargs), kwargs)

    def pack(self, args: tuple[Any, ...], kwargs: dict[str, Any], describe: str) -> argpack.Packed:
        """Arguments packed here as a local driver packs them (large ones put first), for
        the session to pass on unread."""
        return argpack.pack(
            args,
            kwargs,
            max_inline=self.config.max_inline_bytes,
            put=self.objects.put_serialized,
            describe=describe,
        )

    def submit(self, op: ops.SubmitTask | ops.CallActor, options: dict[str, Any]) -> list[ObjectRef]:
        """Send a submission without waiting: this process chose the task's id, so it
        makes the refs of its returns itself (the session holds them from when it submits)."""
        payload, views = wire.dumps(op, _ref_id)
        returns = [ObjectID.for_return(op.task_id, i) for i in range(options["num_returns"])]
        # Copied now: the caller may change its arrays once remote() returns.
        self._channel.send(payload, [memoryview(bytes(v)) for v in views], [bytes(r) for r in returns])
        refs = []
        for object_id in returns:
            self._counts.received(("r", object_id))
            refs.append(ObjectRef(object_id, self.address))
        return refs

    def stream_of(self, completion: ObjectRef) -> ObjectRefGenerator:
        return RemoteObjectRefGenerator(completion, self)

    def call_gcs(self, msg: Any, timeout: float = 30.0) -> Any:
        return self.call(ops.AskGcs(msg))

    def kv_put(self, namespace: str, key: bytes, value: bytes) -> None:
        self.call_gcs(m.KvPut(namespace, key, value, True))

    def cancel(self, ref: ObjectRef, force: bool, recursive: bool) -> None:
        self.call(ops.Cancel(ref, force, recursive))

    def call_future(
        self, op: ops.Operation, then: Callable[[Any], Any] = lambda value: value
    ) -> concurrent.futures.Future[Any]:
        """An operation whose answer (passed through ``then``) a future gives; no thread waits."""
        payload, buffers = wire.dumps(op, _ref_id)
        answer = self._channel.call_future(payload, [memoryview(bytes(v)) for v in buffers])
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def settle(done: concurrent.futures.Future[m.ClientResult]) -> None:
            try:
                future.set_result(then(self._value_of(done.result())))
            except BaseException as e:
                future.set_exception(e)

        answer.add_done_callback(settle)
        return future

    def call(self, op: ops.Operation) -> Any:
        """Carry out ``op`` on the session and wait for its answer."""
        payload, buffers = wire.dumps(op, _ref_id)
        return self._value_of(self._channel.call(payload, buffers))

    def _value_of(self, result: m.ClientResult) -> Any:
        value = wire.loads(result.payload, list(result.buffers), self._load_id)
        if not result.ok:
            raise value
        return value

    def _load_id(self, pid: Any) -> Any:
        if pid[0] == "r":
            object_id = ObjectID(pid[1])
            self._counts.received(("r", object_id))
            return ObjectRef(object_id, pid[2])
        if pid[0] == "a":
            from manta._private.api.actor import ActorHandle

            actor_id = ActorID(pid[1])
            self._counts.received(("a", actor_id))
            return ActorHandle(actor_id, *pid[2:])
        raise ValueError(f"unknown persistent id from the session: {pid!r}")

    def shutdown(self) -> None:
        if self.closed:
            return
        self.closed = True
        object_ref_module.bind_worker(None)
        try:
            self.call(ops.EndSession())
        except Exception:  # the session may be gone already
            pass
        self._channel.close()


class RemoteObjectRefGenerator(ObjectRefGenerator):
    """A streaming generator task's items for a remote driver: its session reads the
    stream (it owns the task) and hands each item's ref over as it comes."""

    def __init__(self, completion: ObjectRef, driver: RemoteDriver) -> None:
        super().__init__(completion, driver)  # type: ignore[arg-type]
        self._driver = driver

    def _next_sync(self, timeout_s: float | None = None) -> ObjectRef:
        if self._generator_task_exception is not None:
            raise StopIteration
        timeout = None if timeout_s is None or timeout_s < 0 else timeout_s
        return self._item(*self._driver.call(ops.NextItem(self._task_id, timeout)))

    def _item(self, what: str, ref: ObjectRef) -> ObjectRef:
        if what == "end":
            raise StopIteration
        if what == "none":
            return ObjectRef.nil()
        if what == "error":  # the task failed: its error is the last item
            self._generator_task_exception = RuntimeError("the generator task failed")
        return ref  # type: ignore[no-any-return]

    def next_ready(self) -> bool:
        return bool(self._driver.call(ops.ItemReady(self._task_id)))

    def is_finished(self) -> bool:
        return bool(self._driver.call(ops.StreamFinished(self._task_id)))

    async def _next_async(self, timeout_s: float | None = None) -> ObjectRef:
        if self._generator_task_exception is not None:
            raise StopAsyncIteration
        timeout = None if timeout_s is None or timeout_s < 0 else timeout_s
        answer = self._driver.call_future(ops.NextItem(self._task_id, timeout))
        try:
            return self._item(*await asyncio.wrap_future(answer))
        except StopIteration:
            raise StopAsyncIteration from None

    def _next_id(self) -> Any:
        return self._driver.call(ops.NextItemId(self._task_id))

    def __del__(self) -> None:
        driver = self.__dict__.get("_driver")
        if driver is not None:  # the session stops reading it for us (told with the next call)
            driver.holds.stop_reading(bytes(self._task_id))


def _ref_id(obj: Any) -> Any:
    if type(obj) is ObjectRef:
        return ("r", bytes(obj.id), obj.owner_address())
    return None


def connect(address: str, token: bytes, config: Config, options: dict[str, Any]) -> RemoteDriver:
    """Open a session on the head at ``address`` (``host:port`` of its client port)."""
    holds = Holds()
    channel = ClientChannel(address, token, config, holds.take_ops)
    try:
        info = pickle.loads(channel.open(pickle.dumps(options)))
        channel.grace_s, channel.beat_s = info["grace_s"], info["heartbeat_s"]  # the head's say
        driver = RemoteDriver(channel, holds, info, config, address)
    except BaseException:
        channel.close()
        raise
    object_ref_module.bind_worker(driver)
    return driver
