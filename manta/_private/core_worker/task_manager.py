"""The owner's record of tasks it submitted: retries, cancellation, completion, lineage.

Decisions only: the submitter reports what happened (a reply, a dead worker, a cancel)
and the task manager answers what to do (store these results, retry, fail with this
error). It touches the memory store and reference counter, never a socket.

Lineage: a finished task whose results went to a node's store is remembered while any of
its results is in use, so a result lost with its store copy can be made again by running
the task once more. Only the record is kept, not the arguments' values. A remembered task
also keeps the records of the tasks that made its (owned) arguments, so an argument freed
since can itself be made again first: reconstruction is recursive, as in Ray. Arguments
made by ``put`` or owned by other processes cannot be remade here.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from manta._private import serialization
from manta._private.common import task_events as te
from manta._private.common.ids import ObjectID, TaskID, WorkerID
from manta._private.core_worker.memory_store import MemoryStore, StoredObject
from manta._private.core_worker.object_ref import ObjectRef
from manta._private.core_worker.reference_counter import ReferenceCounter
from manta._private.core_worker.streams import StreamTable
from manta._private.core_worker.task_events import TaskEventBuffer
from manta._private.rpc import codec
from manta._private.rpc.messages import (
    GENERATOR_DYNAMIC,
    GENERATOR_STREAMING,
    ArgValue,
    ReturnObject,
    TaskResult,
    TaskSpec,
)
from manta.exceptions import (
    ObjectLostError,
    ObjectReconstructionFailedError,
    OutOfMemoryError,
    RaySystemError,
    RayTaskError,
    TaskCancelledError,
    WorkerCrashedError,
)

# How many times a task is sent back for arguments the store lost before it fails.
MAX_LOST_ARG_ROUNDS = 3
# The argument ids of a task without ref arguments, shared (recorded with its definition).
NO_ARGS: tuple[bytes, ...] = ()


@dataclass(slots=True)
class PendingTask:
    spec: TaskSpec
    return_ids: list[ObjectID]
    # Top-level ObjectRef arguments, resolved to values before the task is pushed. These
    # and ``held`` are a shared () for a task without ref arguments: a queue of 100,000
    # tasks then holds 30% fewer objects for the garbage collector to walk.
    arg_refs: Sequence[Any]
    # Ids of every ref in the arguments, nested ones too: counted as submitted until done.
    held: Sequence[ObjectID]
    retries_left: int
    retry_exceptions: bool | tuple[type, ...]
    sched_key: Any
    # The scheduling strategy in its wire form (see api.options).
    strategy: Any = None
    # Set once the submitter has values for every ref argument.
    resolved: Sequence[ArgValue] = ()
    state: str = "pending"  # pending -> queued -> running -> done
    cancelled: bool = False
    force_cancel: bool = False
    # Where it runs now (a submitter lease), for cancellation.
    lease: Any = None
    # Times it was sent back because the store had lost an argument.
    lost_arg_rounds: int = 0
    # Arguments whose producing tasks' records it keeps (see the module docstring).
    lineage_args: list[ObjectID] | None = None

    @property
    def task_id(self) -> TaskID:
        return self.spec.task_id

    def next_attempt(self, spend_retry: bool = True) -> None:
        """Ready to run again: a new attempt number (its puts and results are told apart
        from the last one's), and one retry fewer unless they are unlimited (or, with
        ``spend_retry`` false, it is sent back for lost arguments, which is no failure)."""
        if spend_retry and self.retries_left > 0:
            self.retries_left -= 1
        self.spec = codec.replace(self.spec, attempt=self.spec.attempt + 1)
        self.lease = None


@dataclass(frozen=True, slots=True)
class Retry:
    task: PendingTask
    # Arguments (ObjectRefs) the store lost: have them made again, then resolve afresh.
    lost_args: list[Any] = field(default_factory=list)
    # Freed arguments to make again first (their tasks' re-runs), and those that cannot
    # be made again, with why (stored as their values: the task then fails with it).
    before: list[Retry] = field(default_factory=list)
    failed: list[tuple[ObjectID, Exception]] = field(default_factory=list)


@dataclass(slots=True)  # not frozen: made for every task, and a frozen one costs 3x
class Done:
    task: PendingTask
    # Results nobody holds a ref to any more, whose store copies must be freed.
    unwanted: list[ReturnObject] = field(default_factory=list)


class TaskManager:
    def __init__(
        self,
        memory_store: MemoryStore,
        references: ReferenceCounter,
        events: TaskEventBuffer,
        me: WorkerID,
        streams: StreamTable,
    ) -> None:
        self._store = memory_store
        self._references = references
        self._streams = streams
        # What tasks this process owns went through, for the gcs's task-event store.
        self.events = events
        self._me = me
        self._lock = threading.Lock()
        self.tasks: dict[TaskID, PendingTask] = {}
        # Children submitted by each running task of this process, for recursive cancel.
        # Insertion-ordered dicts used as sets: a driver may have 100k children.
        self.children: dict[TaskID, dict[TaskID, None]] = {}
        # Finished tasks that can make their stored results again (see the module docstring).
        self.lineage: dict[TaskID, PendingTask] = {}
        # How many remembered tasks take each remembered task's results as arguments.
        self._lineage_holds: dict[TaskID, int] = {}

    def add(self, task: PendingTask) -> None:
        spec = task.spec
        if spec.task_events:
            # An actor call waits (for the actor, or its arguments) until it is sent.
            waits = task.arg_refs or spec.actor_id is not None
            state = te.PENDING_ARGS_AVAIL if waits else te.PENDING_NODE_ASSIGNMENT
            self.events.define(spec, state, [r.id for r in task.arg_refs] if task.arg_refs else NO_ARGS)
        with self._lock:
            self.tasks[task.task_id] = task
            parent = task.spec.parent_task_id
            self.children.setdefault(parent, {})[task.task_id] = None

    def get(self, task_id: TaskID) -> PendingTask | None:
        return self.tasks.get(task_id)

    def num_pending(self) -> int:
        return len(self.tasks)

    # -- outcomes -----------------------------------------------------------------------
    def on_result(self, task: PendingTask, result: TaskResult) -> Retry | Done:
        if result.lost_args and task.lost_arg_rounds >= MAX_LOST_ARG_ROUNDS:
            error = ObjectLostError(
                result.lost_args[0].hex(),
                detail=f"The store lost this argument of {task.spec.name} {MAX_LOST_ARG_ROUNDS + 1} times in a row.",
            )
            self.fail(task, error)
            return Done(task)
        if result.lost_args:
            if task.spec.task_events:
                self.events.transition(
                    task.spec, te.FAILED, "OBJECT_LOST", "an argument was lost: sent again"
                )
            task.lost_arg_rounds += 1
            lost = set(result.lost_args)
            task.resolved = []
            task.next_attempt(spend_retry=False)
            task.state = "pending"
            return Retry(task, [r for r in task.arg_refs if r.id in lost])
        if result.is_error and not task.cancelled and self._should_retry_error(task, result):
            self._release_lent(result.returns)  # the error is discarded
            return self._retry(task)
        returns = result.returns
        if len(returns) == 1 and task.return_ids == [returns[0].object_id]:
            return Done(task, self._complete(task, returns))  # the common case, checked cheaply
        # Only this task's results are taken: a reply naming other objects must not set or
        # free them (an error reply of a task with num_returns=0 carries one it never wants).
        expected = set(task.return_ids)
        returns = [r for r in result.returns if r.object_id in expected]
        self._release_lent([r for r in result.returns if r.object_id not in expected])
        if len({r.object_id for r in returns}) != len(expected):
            got = ", ".join(r.object_id.hex() for r in result.returns) or "none"
            self.fail(
                task, RaySystemError(f"the worker's reply for {task.spec.name} has the wrong results ({got})")
            )
            self._release_lent(returns)
            return Done(task)
        return Done(task, self._complete(task, returns))

    def _release_lent(self, returns: list[ReturnObject]) -> None:
        """Refs inside results nobody will hold were lent to this process: give them back."""
        for ret in returns:
            if ret.contained:
                self._references.add_returned(None, [(n.object_id, n.owner) for n in ret.contained], self._me)

    def on_worker_died(self, task: PendingTask, why: str, out_of_memory: bool = False) -> Retry | Done:
        """The worker running ``task`` died (or its connection broke); ``out_of_memory``:
        its node's memory monitor killed it, and ``why`` is the node's whole message."""
        if task.cancelled:
            self.fail(task, TaskCancelledError(task.task_id.hex()))
            return Done(task)
        error = OutOfMemoryError(why) if out_of_memory else WorkerCrashedError(why)
        if task.retries_left != 0:
            if task.spec.task_events:
                self.events.failed(task.spec, error)  # this attempt; the next one runs
            return self._retry(task)
        self.fail(task, error)
        return Done(task)

    def fail(self, task: PendingTask, error: BaseException) -> None:
        """Finish ``task`` with ``error`` as the value of every return."""
        blob = serialization.to_inline(serialization.serialize(error, serialization.FLAG_ERROR))
        self._finish_with_blob(task, blob, error)

    def fail_with_argument(self, task: PendingTask, blob: bytes) -> None:
        """Finish ``task``, unrun, because an argument holds an error (``blob``). As in Ray,
        the error is the task's own (a RayTaskError naming it, and also an instance of the
        first error's cause), saying that an argument could not be computed."""
        try:
            upstream = serialization.from_inline(blob)
        except Exception as e:
            self._finish_with_blob(task, blob, e)  # keep what there is to say
            return
        cause = upstream.cause if isinstance(upstream, RayTaskError) else upstream
        error = RayTaskError(
            task.spec.name,
            f"At least one of the input arguments for this task could not be computed:\n"
            f"{type(upstream).__module__}.{type(upstream).__name__}: {upstream}",
            cause,
            actor_id=task.spec.actor_id.hex() if task.spec.actor_id is not None else None,
        )
        self.fail(task, error)

    def _finish_with_blob(self, task: PendingTask, blob: bytes, error: BaseException) -> None:
        if task.spec.task_events:
            self.events.failed(task.spec, error)
        returns = [ReturnObject(oid, blob, len(blob), None) for oid in task.return_ids]
        self._complete(task, returns, is_error=True)

    def _should_retry_error(self, task: PendingTask, result: TaskResult) -> bool:
        if task.retries_left == 0 or not task.retry_exceptions:
            return False
        if not isinstance(task.retry_exceptions, tuple):
            return True
        blob = result.returns[0].inline if result.returns else None
        if blob is None:
            return False
        try:
            error = serialization.from_inline(blob)
        except Exception:
            return False
        cause = error.cause if isinstance(error, RayTaskError) else error
        return isinstance(cause, task.retry_exceptions)

    def _retry(self, task: PendingTask) -> Retry:
        task.next_attempt()
        task.state = "pending"
        return Retry(task)

    def _complete(
        self, task: PendingTask, returns: list[ReturnObject], is_error: bool = False
    ) -> list[ReturnObject]:
        task.state = "done"
        with self._lock:
            self.tasks.pop(task.task_id, None)
            siblings = self.children.get(task.spec.parent_task_id)
            if siblings is not None:
                siblings.pop(task.task_id, None)
                if not siblings:
                    del self.children[task.spec.parent_task_id]
        generator = task.spec.generator
        if generator == GENERATOR_DYNAMIC:
            if self._references.is_owned(task.return_ids[0]):
                returns = self._streams.dynamic_returns(task.task_id, returns)
            else:
                self._streams.drop(task.task_id)
        unwanted = []
        for ret in returns:
            if ret.contained:
                # Before the arguments are released below: they may be among these refs.
                refs = [(n.object_id, n.owner) for n in ret.contained]
                self._references.add_returned(ret.object_id, refs, self._me)
            if not self._references.is_owned(ret.object_id):
                unwanted.append(ret)
                continue
            error = is_error or (
                ret.inline is not None
                and bool(serialization.inline_flags(ret.inline) & serialization.FLAG_ERROR)
            )
            self._store.put(ret.object_id, StoredObject(ret.inline, ret.node_id, ret.size, error))
        if generator == GENERATOR_STREAMING:
            self._streams.finish(task.task_id)  # after the completion ref is set
        if generator:
            self._fail_lost_items(task, returns)
        task.arg_refs = ()
        if self._keeps_lineage(task, returns, is_error):
            with self._lock:
                self.lineage[task.task_id] = task
                if task.lineage_args is None:  # counted once, not again after a re-run
                    task.lineage_args = [
                        i for i in task.held if self._references.is_owned(i) and not i.is_put()
                    ]
                    for arg in task.lineage_args:
                        self._lineage_holds[arg.task_id()] = self._lineage_holds.get(arg.task_id(), 0) + 1
        elif task.lineage_args is not None:
            # A re-run that keeps no lineage (it failed, or nobody wants its results now):
            # what it held for remaking its arguments goes, as when its lineage is released.
            with self._lock:
                self._release(self._drop_holds(task))
        if task.held:
            self._references.remove_submitted(task.held)
        return unwanted

    def _fail_lost_items(self, task: PendingTask, returns: list[ReturnObject]) -> None:
        """A generator task ran again to rebuild lost items: those it did not yield again
        (it failed, or yielded fewer this time) hold an error rather than never arrive."""
        lost = [
            i
            for i in self._streams.stored_item_ids(task.task_id)
            if self._references.is_owned(i) and not self._store.contains(i)
        ]
        if not lost:
            return
        blob = returns[0].inline if returns and returns[0].inline is not None else None
        if blob is None or not serialization.inline_flags(blob) & serialization.FLAG_ERROR:
            error = RayTaskError(
                task.spec.name,
                f"ValueError: run again to rebuild lost items, {task.spec.name} yielded fewer "
                "items than the first time (generators must yield the same items each run)",
                ValueError(f"{task.spec.name} yielded fewer items when run again"),
            )
            blob = serialization.to_inline(serialization.serialize(error, serialization.FLAG_ERROR))
        for object_id in lost:
            self._store.put(object_id, StoredObject(blob, None, len(blob), True))

    def _keeps_lineage(self, task: PendingTask, returns: list[ReturnObject], is_error: bool) -> bool:
        if is_error or task.spec.actor_id is not None:
            return False
        if any(r.node_id is not None and self._references.is_owned(r.object_id) for r in returns):
            return True
        if not task.spec.generator:
            return False
        # A generator task's items are not among its returns: ask the streams.
        return any(self._references.is_owned(i) for i in self._streams.stored_item_ids(task.task_id))

    # -- lineage ----------------------------------------------------------------------------
    def release_lineage(self, freed: list[ObjectID]) -> None:
        """Owned objects were freed: forget the lineage of tasks none of whose results are
        in use any more, and which no remembered task needs to remake its arguments."""
        if not self.lineage:
            return
        with self._lock:
            self._release([object_id.task_id() for object_id in freed])

    def _release(self, unheld: list[TaskID]) -> None:
        """(Under the lock.) Forget the lineage of these tasks where nothing needs it."""
        while unheld:
            task = self.lineage.get(unheld.pop())
            if (
                task is None
                or self._lineage_holds.get(task.task_id, 0) > 0
                or any(self._references.is_owned(r) for r in task.return_ids)
                or any(self._references.is_owned(i) for i in self._streams.stored_item_ids(task.task_id))
            ):
                continue
            del self.lineage[task.task_id]
            self._streams.forget(task.task_id)
            unheld += self._drop_holds(task)

    def _drop_holds(self, task: PendingTask) -> list[TaskID]:
        """(Under the lock.) ``task`` no longer needs its arguments remade: the tasks that
        made them that no remembered task needs any more."""
        unheld = []
        for arg in task.lineage_args or ():
            producer = arg.task_id()
            left = self._lineage_holds.get(producer, 0) - 1
            if left > 0:
                self._lineage_holds[producer] = left
            else:
                self._lineage_holds.pop(producer, None)
                unheld.append(producer)
        task.lineage_args = None
        return unheld

    def reconstruct(self, object_id: ObjectID) -> Retry | ObjectReconstructionFailedError | None:
        """``object_id``'s only copy is lost: run its task again (Retry, with the re-runs
        of freed arguments it needs first), or say why it cannot be made again. None when
        the task is already running again."""
        task_id = object_id.task_id()
        with self._lock:
            if task_id in self.tasks:
                return None
            task = self.lineage.get(task_id)
            gone = [] if task is None else [i for i in task.held if not self._references.knows(i)]
            lost_for_good = [
                i for i in gone if i.task_id() not in self.lineage and i.task_id() not in self.tasks
            ]
            if task is not None and task.retries_left != 0 and not lost_for_good:
                del self.lineage[task_id]
                self.tasks[task_id] = task
                self.children.setdefault(task.spec.parent_task_id, {})[task_id] = None
        if task is None:
            why = (
                "it was made by put(), which has no task to run again; return it from a task "
                "instead if it must survive the loss of its copy"
                if object_id.is_put()
                else "the task that made it is no longer known (its results were freed, or it "
                "ran on an actor, whose methods are not re-run)"
            )
            return ObjectReconstructionFailedError(object_id.hex(), detail=f"All copies are lost and {why}.")
        if task.retries_left == 0:
            return ObjectReconstructionFailedError(
                object_id.hex(),
                detail=f"All copies are lost and its task {task.spec.name} has no retries left "
                "(max_retries); raise max_retries to let it be made again.",
            )
        if lost_for_good:
            return ObjectReconstructionFailedError(
                object_id.hex(),
                detail=f"All copies are lost and its task {task.spec.name} cannot run again: its "
                f"argument {lost_for_good[0].hex()} has been freed since and cannot be made again "
                "(a put, or another process's object). Keep a ref to such arguments of tasks "
                "whose results must survive the loss of their copy.",
            )
        # Its arguments are held again, and resolved afresh (they may have moved). Freed
        # ones become ours again, to be made again by their own tasks first.
        self._references.add_submitted([(i, self._references.owner_of(i)) for i in task.held])
        before: list[Retry] = []
        failed: list[tuple[ObjectID, Exception]] = []
        for arg in gone:
            self._references.add_owned(arg)
            outcome = self.reconstruct(arg)
            if isinstance(outcome, Retry):
                before.append(outcome)
            elif outcome is not None:
                failed.append((arg, outcome))
        task.arg_refs = [
            ObjectRef(a.object_id, self._references.owner_of(a.object_id)) for a in task.resolved
        ]
        task.resolved = []
        task.cancelled = False
        retry = self._retry(task)
        return Retry(retry.task, retry.lost_args, before, failed)
