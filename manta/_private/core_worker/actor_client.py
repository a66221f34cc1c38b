"""The user thread's side of actors: create them, call them, count handles, kill, look up.

Handles are counted in the process that created the actor (its owner). When the last
handle there is dropped and no handle ever left the process (pickled into a value or an
argument), the actor is no longer reachable: the owner sends it ``__ray_terminate__``,
which runs after the calls already sent. Handles that escaped keep the actor alive until
its owner or job ends. Refs among the constructor's arguments stay alive until the actor
is dead for good, since a restart runs the constructor again.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from manta._private.common.ids import ActorID, ObjectID, TaskID
from manta._private.core_worker import args as argpack
from manta._private.core_worker.actor_runtime import TERMINATE_METHOD
from manta._private.core_worker.actor_submitter import ActorTaskSubmitter
from manta._private.core_worker.local_mode import LocalRunner
from manta._private.core_worker.object_ref import ObjectRef
from manta._private.core_worker.peers import Peers
from manta._private.core_worker.reference_counter import ReferenceCounter
from manta._private.core_worker.task_events import TaskEventBuffer
from manta._private.rpc import codec
from manta._private.rpc import messages as m
from manta._private.rpc.transport import RemoteError
from manta.exceptions import ActorAlreadyExistsError

# (args, kwargs, what they are for) -> (inline blob, ref arguments, ids of every ref in them,
# now held for the caller): ``CoreWorker.pack_arguments``.
PackArguments = Callable[
    [tuple[Any, ...] | argpack.Packed, dict[str, Any], str],
    tuple[bytes, Sequence[ObjectRef], Sequence[ObjectID]],
]


class ActorClient:
    def __init__(
        self,
        peers: Peers,
        references: ReferenceCounter,
        pack_arguments: PackArguments,
        submit_task: Callable[..., list[ObjectRef]],
        actor_submitter: ActorTaskSubmitter,
        local: LocalRunner | None,
        events: TaskEventBuffer,
    ) -> None:
        self._peers = peers
        self._events = events  # an actor's creation is a task too (ACTOR_CREATION_TASK)
        self._references = references
        self._pack_arguments = pack_arguments
        self._submit_task = submit_task  # ``CoreWorker.submit_task``: method calls are tasks
        self._submitter = actor_submitter
        self._local = local  # init(local_mode=True): actors live in this process
        self._lock = threading.Lock()
        self._handles: dict[ActorID, int] = {}
        # Actors this process created and may end when its handles are gone.
        self._owned: set[ActorID] = set()
        self._escaped: set[ActorID] = set()
        self._drops: deque[ActorID] = deque()
        # Ids of the refs among each owned actor's constructor arguments.
        self._arguments: dict[ActorID, Sequence[ObjectID]] = {}

    # -- creation --------------------------------------------------------------------------
    def create(
        self,
        spec: m.ActorSpec,
        args: tuple[Any, ...] | argpack.Packed,
        kwargs: dict[str, Any],
        get_if_exists: bool,
    ) -> m.ActorInfo | None:
        """Register a new actor. Returns the existing actor's info when ``get_if_exists``
        found one; raises ActorAlreadyExistsError for a taken name."""
        # Constructor arguments live as long as the actor may need to be re-created.
        blob, ref_args, held = self._pack_arguments(
            args, kwargs, f"the actor {spec.module}.{spec.class_name}.__init__"
        )
        if held:
            with self._lock:
                self._arguments[spec.actor_id] = held
        if spec.task_events:
            self._events.define_actor_creation(spec, bool(ref_args))
        spec = codec.replace(spec, args=blob)
        if self._local is not None:
            existing = self._local.create_actor(spec, ref_args, get_if_exists)
            if existing is not None:
                return existing
        elif spec.name:
            # A name must be claimed before .remote() returns, so a clash raises here. Ref
            # arguments follow once ready (ActorArgsReady); .remote() does not wait for them.
            try:
                info: m.ActorInfo = self._peers.call_gcs(m.RegisterActor(spec, get_if_exists, bool(ref_args)))
            except RemoteError as e:
                self.actor_dead(spec.actor_id)  # never made: its arguments are not needed
                if "is already taken" in e.text:
                    raise ActorAlreadyExistsError(e.text) from None
                raise
            self._peers.io.call_soon(self._submitter.on_info, info)
            if info.actor_id != spec.actor_id:
                self.actor_dead(spec.actor_id)  # the one found is used: these arguments are not
                return info
            if ref_args:
                self._peers.io.call_soon(self._submitter.resolve_constructor_args, spec.actor_id, ref_args)
        else:
            self._peers.io.call_soon(self._submitter.create, spec, ref_args)
        if not spec.detached:
            with self._lock:
                self._owned.add(spec.actor_id)
        return None

    # -- handles ---------------------------------------------------------------------------------
    def add_handle(self, actor_id: ActorID) -> None:
        with self._lock:
            self._handles[actor_id] = self._handles.get(actor_id, 0) + 1

    def drop_handle(self, actor_id: ActorID) -> None:
        self._drops.append(actor_id)  # from __del__: any thread, any time; applied later

    def actor_dead(self, actor_id: ActorID) -> None:
        """The actor is dead for good: its constructor arguments are no longer needed."""
        with self._lock:
            held = self._arguments.pop(actor_id, None)
        if held:
            self._references.remove_submitted(held)

    def owns_actors(self) -> bool:
        return bool(self._owned)

    def handle_escaped(self, actor_id: ActorID) -> None:
        with self._lock:
            if actor_id in self._owned:
                self._escaped.add(actor_id)

    def collect(self) -> None:
        """Apply dropped handles; end owned actors nobody can reach any more."""
        if not self._drops:
            return
        ended = []
        with self._lock:
            while self._drops:
                actor_id = self._drops.popleft()
                left = self._handles.get(actor_id, 0) - 1
                if left > 0:
                    self._handles[actor_id] = left
                    continue
                self._handles.pop(actor_id, None)
                if actor_id in self._owned and actor_id not in self._escaped:
                    self._owned.discard(actor_id)
                    ended.append(actor_id)
        for actor_id in ended:
            if self._local is None:
                # Decided on the I/O thread, after the calls submitted before are queued.
                self._peers.io.call_soon(self._end_unreachable, actor_id)
            else:
                self._terminate(actor_id)

    def _end_unreachable(self, actor_id: ActorID) -> None:
        """I/O thread: no handle reaches the actor any more. One not made yet with no calls
        waiting for it (waiting for resources, say) is not made at all, which releases what
        it holds; any other ends after the calls sent to it."""
        submitter = self._submitter
        if not submitter.is_created(actor_id) and submitter.pending_calls(actor_id) == 0:
            submitter.cancel_creation(actor_id)
        else:
            self._terminate(actor_id)

    def _terminate(self, actor_id: ActorID) -> None:
        self.call(
            actor_id,
            TERMINATE_METHOD,
            (),
            {},
            num_returns=0,
            name=TERMINATE_METHOD,
            function_name=TERMINATE_METHOD,
        )

    # -- calls -------------------------------------------------------------------------------------
    def call(
        self,
        actor_id: ActorID,
        method: str,
        args: tuple[Any, ...] | argpack.Packed,
        kwargs: dict[str, Any],
        *,
        num_returns: int,
        name: str,
        function_name: str,
        concurrency_group: str = "",
        max_task_retries: int = 0,
        retry_exceptions: bool | tuple[type, ...] = False,
        generator: int = 0,
        backpressure: int = 0,
        task_events: bool = True,
        task_id: TaskID | None = None,
    ) -> list[ObjectRef]:
        return self._submit_task(
            function_id=b"",
            function_name=function_name,
            name=name,
            args=args,
            kwargs=kwargs,
            num_returns=num_returns,
            resources={},
            max_retries=max_task_retries,
            retry_exceptions=retry_exceptions,
            runtime_env=None,
            strategy=None,
            actor_id=actor_id,
            method=method,
            concurrency_group=concurrency_group,
            generator=generator,
            backpressure=backpressure,
            task_events=task_events,
            task_id=task_id,
        )

    # -- the gcs -----------------------------------------------------------------------------------
    def kill(self, actor_id: ActorID, no_restart: bool) -> None:
        if self._local is not None:
            self._local.kill(actor_id)
            return
        self._peers.call_gcs(m.KillActor(actor_id, no_restart, "it was killed by `ray.kill` (manta.kill)"))

    def lookup(self, name: str, namespace: str) -> m.ActorInfo | None:
        if self._local is not None:
            return self._local.lookup(name, namespace)
        info: m.ActorInfo | None = self._peers.call_gcs(m.GetNamedActor(name, namespace))
        if info is not None and info.state != "DEAD":
            self._peers.io.call_soon(self._submitter.on_info, info)
            return info
        return None

    def list_named(self, namespace: str, all_namespaces: bool) -> list[tuple[str, str]]:
        if self._local is not None:
            return self._local.list_named(namespace, all_namespaces)
        return [(ns, name) for ns, name in self._peers.call_gcs(m.ListNamedActors(namespace, all_namespaces))]
