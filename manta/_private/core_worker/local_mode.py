"""``init(local_mode=True)``: tasks and actors run in the driver's own process.

Every task and actor call runs the moment it is submitted, in the submitting thread, one
at a time, so ``breakpoint()`` and a debugger stop inside it. Ray dropped local mode; its
users still ask for it, so Manta keeps it, with the cluster's semantics: arguments and
results are serialized copies held in the object store, errors are ``RayTaskError``s
raised at ``get``, generators stream, actors keep their state and named actors are
found by name. The cluster still runs (objects, placement groups and the state live
there); only execution moves into the driver.

The same executor code that runs a task in a worker runs it here, with three changes: no
output labels (the driver's output is the user's), no process exit (``sys.exit`` fails
the task, ``exit_actor`` ends only that actor), and no backpressure (the reader is this
same thread, after the generator has finished).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from manta._private.common.ids import ActorID, LeaseID
from manta._private.core_worker.actor_runtime import ActorExit, ActorRuntime
from manta._private.core_worker.actor_submitter import death_error
from manta._private.core_worker.executor import ExecutorParts, TaskExecutor
from manta._private.core_worker.memory_store import MemoryStore
from manta._private.core_worker.task_manager import Done, PendingTask, TaskManager
from manta._private.rpc import codec
from manta._private.rpc import messages as m
from manta.exceptions import ActorAlreadyExistsError, RayActorError, WorkerCrashedError

_NO_LEASE = LeaseID(b"\x00" * LeaseID.SIZE)


class _ProcessExit(Exception):
    """A task in local mode called ``sys.exit()``: the driver must not exit with it."""


class LocalActorRuntime(ActorRuntime):
    def exit(self, reason: str) -> None:
        # Only the actor ends: its shutdown hook runs, the process (the driver) goes on.
        hook = getattr(self.instance, "__ray_shutdown__", None)
        if callable(hook):
            hook()


class LocalExecutor(TaskExecutor):
    runtime_class = LocalActorRuntime

    def _mark_task(self, name: str) -> None:
        pass  # the driver's output is the user's: no task labels in it

    def _announce_exit(self, spec: m.ActorSpec, reason: str) -> None:
        pass  # the gcs does not know actors that live in the driver

    def _end_process(self, exiting: SystemExit) -> NoReturn:
        raise _ProcessExit(f"sys.exit({exiting.code!r}) was called in the task")


@dataclass(eq=False)
class _LocalActor:
    spec: m.ActorSpec
    executor: LocalExecutor
    death: str = ""  # why it ended; empty while it lives
    creation_error: bytes | None = None
    loop_thread: threading.Thread | None = None  # an async actor's


class LocalRunner:
    def __init__(
        self,
        parts: ExecutorParts,
        memory_store: MemoryStore,
        task_manager: TaskManager,
        actor_dead: Callable[[ActorID], None],
    ) -> None:
        self._host = parts.host  # its actor_id is the actor whose method runs, while one does
        self._objects = parts.objects
        self._memory_store = memory_store
        self._task_manager = task_manager
        self._actor_dead = actor_dead  # an actor ended for good (its owner's handles)
        self._parts = parts  # each executor (one for tasks, one per actor) is made of them
        self._tasks = LocalExecutor(*parts)
        self._actors: dict[ActorID, _LocalActor] = {}
        self._named: dict[tuple[str, str], ActorID] = {}

    # -- tasks and actor calls ------------------------------------------------------------------
    def submit(self, task: PendingTask) -> None:
        """Run ``task`` now, in this thread, and settle it (retrying as the cluster would)."""
        objects, task_manager = self._objects, self._task_manager
        if task.arg_refs:
            objects.wait(list(task.arg_refs), len({r.id for r in task.arg_refs}), None, True)
        for ref in task.arg_refs:
            obj = self._memory_store.get(ref.id)
            if obj is not None and obj.is_error and obj.inline is not None:
                task_manager.fail_with_argument(task, obj.inline)  # as a failed argument does
                return
        if task.arg_refs:
            resolved = [objects.arg_value(ref) for ref in task.arg_refs]
            task.spec = codec.replace(task.spec, ref_args=resolved)
        task.spec = codec.replace(task.spec, backpressure=0)
        while True:
            result = self._run(task)
            if result is None:
                return
            outcome = task_manager.on_result(task, result)
            if isinstance(outcome, Done):
                if outcome.unwanted:
                    objects.free_store_copies(outcome.unwanted)
                return

    def _run(self, task: PendingTask) -> m.TaskResult | None:
        push = m.PushTask(task.spec, _NO_LEASE, {})
        actor_id = task.spec.actor_id
        if actor_id is None:
            try:
                return self._tasks.execute(push)
            except _ProcessExit as e:
                self._task_manager.fail(task, WorkerCrashedError(str(e)))
                return None
        actor = self._actors.get(actor_id)
        if actor is None or actor.death:
            self._task_manager.fail(task, self._death_error(actor_id, actor))
            return None
        outer = self._host.actor_id
        self._host.actor_id = actor_id
        try:
            runtime = actor.executor.actor
            assert runtime is not None
            if runtime.is_async:
                assert runtime.loop is not None
                return asyncio.run_coroutine_threadsafe(
                    actor.executor.execute_async(push), runtime.loop
                ).result()
            return actor.executor.execute(push)
        except (ActorExit, _ProcessExit) as e:
            self._end_actor(actor, f"it exited: {e or 'exit_actor() was called'}")
            self._task_manager.fail(task, self._death_error(actor_id, actor))
            return None
        finally:
            self._host.actor_id = outer

    # -- actors -------------------------------------------------------------------------------------
    def create_actor(
        self, spec: m.ActorSpec, arg_refs: Sequence[Any], get_if_exists: bool
    ) -> m.ActorInfo | None:
        """Make the actor now, in this process; the info of an existing one for get_if_exists."""
        key = (spec.namespace, spec.name)
        if spec.name and key in self._named:
            existing = self._actors[self._named[key]]
            if get_if_exists:
                return self._info(existing)
            raise ActorAlreadyExistsError(
                f"The name {spec.name} (namespace={spec.namespace}) is already taken. Please use a "
                f"different name or get the existing actor using manta.get_actor('{spec.name}', "
                f"namespace='{spec.namespace}')"
            )
        if arg_refs:
            self._objects.wait(list(arg_refs), len(arg_refs), None, True)
            spec = codec.replace(spec, ref_args=[self._objects.arg_value(r) for r in arg_refs])
        actor = _LocalActor(spec, LocalExecutor(*self._parts))
        self._actors[spec.actor_id] = actor
        if spec.name:
            self._named[key] = spec.actor_id
        outer = self._host.actor_id
        try:
            created = actor.executor._create_actor(m.CreateActor(spec, _NO_LEASE, {}))
        finally:
            self._host.actor_id = outer
        if not created.ok:
            actor.creation_error = created.error
            self._end_actor(actor, "its constructor raised an exception")
            return None
        if actor.executor.exited_in_constructor:
            self._end_actor(actor, f"it exited: {actor.executor.exited_in_constructor}")
            return None
        runtime = actor.executor.actor
        if runtime is not None and runtime.is_async:
            # Its methods run on its own loop, in a thread: the caller may be on a loop itself.
            actor.loop_thread = threading.Thread(
                target=runtime.run_loop, name=f"actor-{spec.class_name}", daemon=True
            )
            actor.loop_thread.start()
        return None

    def kill(self, actor_id: ActorID) -> None:
        actor = self._actors.get(actor_id)
        if actor is None:
            raise ValueError(f"there is no actor {actor_id.hex()}")
        self._end_actor(actor, "it was killed by `ray.kill` (manta.kill)")

    def lookup(self, name: str, namespace: str) -> m.ActorInfo | None:
        actor_id = self._named.get((namespace, name))
        return None if actor_id is None else self._info(self._actors[actor_id])

    def list_named(self, namespace: str, all_namespaces: bool) -> list[tuple[str, str]]:
        return sorted((ns, name) for ns, name in self._named if all_namespaces or ns == namespace)

    def _end_actor(self, actor: _LocalActor, cause: str) -> None:
        if actor.death:
            return
        actor.death = cause
        key = (actor.spec.namespace, actor.spec.name)
        if actor.spec.name and self._named.get(key) == actor.spec.actor_id:
            del self._named[key]
        runtime = actor.executor.actor
        thread = actor.loop_thread
        if runtime is not None and runtime.loop is not None and thread is not None:
            runtime.loop.call_soon_threadsafe(runtime.loop.stop)
            if thread is not threading.current_thread():
                thread.join(5)
                runtime.loop.close()
        self._actor_dead(actor.spec.actor_id)

    def shutdown(self) -> None:
        """The driver is leaving: its actors end with it (no hooks run, as for a kill)."""
        for actor in list(self._actors.values()):
            self._end_actor(actor, "its driver exited")

    def _death_error(self, actor_id: ActorID, actor: _LocalActor | None) -> RayActorError:
        return death_error(actor_id, None if actor is None else self._info(actor))

    def _info(self, actor: _LocalActor) -> m.ActorInfo:
        spec = actor.spec
        return m.ActorInfo(
            spec.actor_id, "DEAD" if actor.death else "ALIVE", self._parts.peers.address, 0, actor.death, actor.creation_error,
            spec.class_name, spec.name, spec.namespace, spec.detached, spec.methods, spec.max_task_retries,
            spec.max_pending_calls, spec.is_async, spec.owner,
        )  # fmt: skip
