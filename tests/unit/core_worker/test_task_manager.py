"""The task manager's decisions: store results, retry, or fail with the right error."""

from __future__ import annotations

import pytest

from manta._private import serialization
from manta._private.common.ids import JobID, NodeID, ObjectID, TaskID, WorkerID
from manta._private.core_worker.memory_store import MemoryStore
from manta._private.core_worker.object_ref import ObjectRef
from manta._private.core_worker.reference_counter import Freed, ReferenceCounter
from manta._private.core_worker.streams import StreamTable
from manta._private.core_worker.task_events import TaskEventBuffer
from manta._private.core_worker.task_manager import MAX_LOST_ARG_ROUNDS, Done, PendingTask, Retry, TaskManager
from manta._private.rpc.messages import Address, ArgValue, NestedRef, ReturnObject, TaskResult, TaskSpec
from manta.exceptions import (
    ObjectLostError,
    ObjectReconstructionFailedError,
    OutOfMemoryError,
    RaySystemError,
    RayTaskError,
    TaskCancelledError,
    WorkerCrashedError,
)

JOB = JobID.from_int(1)
DRIVER_TASK = TaskID.for_driver(JOB)
OWNER = Address(NodeID.from_random(), WorkerID.from_random(), "127.0.0.1", 1, "", 2)
ME, NODE = OWNER.worker_id, OWNER.node_id
OTHER = Address(NodeID.from_random(), WorkerID.from_random(), "127.0.0.1", 3, "", 4)


def make_spec(task_id: TaskID, parent: TaskID, num_returns: int) -> TaskSpec:
    values = {
        "task_id": task_id,
        "job_id": JOB,
        "parent_task_id": parent,
        "name": "f",
        "function_id": b"fid",
        "function_name": "mod.f",
        "args": b"",
        "ref_args": [],
        "num_returns": num_returns,
        "owner": OWNER,
        "attempt": 0,
        "resources": {"CPU": 1.0},
        "runtime_env": None,
        "depth": 0,
        "max_calls": 0,
    }
    return TaskSpec(**values)


class World:
    def __init__(self) -> None:
        self.store = MemoryStore()
        self.refs = ReferenceCounter()
        self.streams = StreamTable(
            self.store, self.refs, ME, lambda: OWNER, lambda _r: None, lambda f, *a: f(*a)
        )
        self.events = TaskEventBuffer(1000)
        self.manager = TaskManager(self.store, self.refs, self.events, me=ME, streams=self.streams)

    def submit(
        self,
        *,
        retries: int = 0,
        retry_exceptions: bool | tuple[type, ...] = False,
        num_returns: int = 1,
        parent: TaskID = DRIVER_TASK,
        arg_refs: list | None = None,
    ) -> PendingTask:
        task_id = TaskID.for_normal_task(JOB)
        spec = make_spec(task_id, parent, num_returns)
        return_ids = [ObjectID.for_return(task_id, i) for i in range(num_returns)]
        for oid in return_ids:
            self.refs.add_owned(oid)
        arg_refs = arg_refs or []
        held = [r.id for r in arg_refs]
        task = PendingTask(spec, return_ids, arg_refs, held, retries, retry_exceptions, sched_key="k")
        self.manager.add(task)
        return task

    def value(self, oid: ObjectID) -> object:
        stored = self.store.get(oid)
        assert stored is not None and stored.inline is not None
        return serialization.from_inline(stored.inline)


def ok(task: PendingTask, value: object = "result") -> TaskResult:
    blob = serialization.to_inline(serialization.serialize(value))
    return TaskResult([ReturnObject(oid, blob, len(blob), None) for oid in task.return_ids], False, 0.01)


def raised(task: PendingTask, cause: BaseException) -> TaskResult:
    error = RayTaskError("f", "Traceback ...", cause)
    blob = serialization.to_inline(serialization.serialize(error, serialization.FLAG_ERROR))
    return TaskResult([ReturnObject(oid, blob, len(blob), None) for oid in task.return_ids], True, 0.01)


def test_success_stores_every_return() -> None:
    world = World()
    task = world.submit(num_returns=2)
    assert world.manager.num_pending() == 1
    outcome = world.manager.on_result(task, ok(task))
    assert outcome == Done(task, [])
    assert task.state == "done"
    assert world.manager.get(task.task_id) is None
    for oid in task.return_ids:
        assert world.value(oid) == "result"
        stored = world.store.get(oid)
        assert stored is not None and not stored.is_error


def test_large_result_is_stored_as_a_location() -> None:
    world = World()
    task = world.submit()
    node = NodeID.from_random()
    world.manager.on_result(
        task, TaskResult([ReturnObject(task.return_ids[0], None, 1 << 30, node)], False, 1.0)
    )
    stored = world.store.get(task.return_ids[0])
    assert stored is not None
    assert (stored.inline, stored.node_id, stored.size, stored.is_error) == (None, node, 1 << 30, False)


def test_results_nobody_wants_are_returned_for_freeing() -> None:
    world = World()
    task = world.submit(num_returns=2)
    # The caller dropped its ref to the second return before the task finished.
    world.refs.add_local(task.return_ids[1], None)
    world.refs.drop_local(task.return_ids[1])
    world.refs.collect()
    result = ok(task)
    outcome = world.manager.on_result(task, result)
    assert isinstance(outcome, Done)
    assert outcome.unwanted == [result.returns[1]]
    assert not world.store.contains(task.return_ids[1])
    assert world.store.contains(task.return_ids[0])


def test_worker_death_with_retries_left_retries() -> None:
    world = World()
    task = world.submit(retries=2)
    task.state, task.lease = "running", object()
    outcome = world.manager.on_worker_died(task, "the worker died")
    assert outcome == Retry(task)
    assert task.retries_left == 1
    assert task.spec.attempt == 1
    assert task.state == "pending" and task.lease is None
    assert world.manager.get(task.task_id) is task
    assert not world.store.contains(task.return_ids[0])
    world.manager.on_worker_died(task, "again")
    assert (task.retries_left, task.spec.attempt) == (0, 2)


def test_worker_death_with_infinite_retries_keeps_retrying() -> None:
    world = World()
    task = world.submit(retries=-1)
    for attempt in range(1, 6):
        assert isinstance(world.manager.on_worker_died(task, "died"), Retry)
        assert task.retries_left == -1
        assert task.spec.attempt == attempt


def test_worker_death_with_no_retries_left_stores_worker_crashed_error() -> None:
    world = World()
    task = world.submit(retries=0, num_returns=2)
    outcome = world.manager.on_worker_died(task, "worker 1234 died: SIGKILL")
    assert outcome == Done(task)
    assert world.manager.num_pending() == 0
    for oid in task.return_ids:
        error = world.value(oid)
        assert isinstance(error, WorkerCrashedError)
        assert str(error) == "worker 1234 died: SIGKILL"
        stored = world.store.get(oid)
        assert stored is not None and stored.is_error


def test_a_worker_killed_for_memory_is_retried_then_fails_with_out_of_memory_error() -> None:
    world = World()
    task = world.submit(retries=1)
    why = "Task was killed due to the node running low on memory. Node n1 was using ..."
    assert world.manager.on_worker_died(task, why, out_of_memory=True) == Retry(task)
    assert world.manager.on_worker_died(task, why, out_of_memory=True) == Done(task)
    error = world.value(task.return_ids[0])
    assert isinstance(error, OutOfMemoryError)
    assert not isinstance(error, WorkerCrashedError)
    assert str(error) == why


def test_application_error_is_not_retried_by_default() -> None:
    world = World()
    task = world.submit(retries=3)
    outcome = world.manager.on_result(task, raised(task, ValueError("bad")))
    assert isinstance(outcome, Done)
    error = world.value(task.return_ids[0])
    assert isinstance(error, RayTaskError) and isinstance(error.cause, ValueError)
    stored = world.store.get(task.return_ids[0])
    assert stored is not None and stored.is_error
    assert task.retries_left == 3


def test_retry_exceptions_true_retries_any_error_until_retries_run_out() -> None:
    world = World()
    task = world.submit(retries=1, retry_exceptions=True)
    assert isinstance(world.manager.on_result(task, raised(task, KeyError("k"))), Retry)
    assert task.retries_left == 0
    assert isinstance(world.manager.on_result(task, raised(task, KeyError("k"))), Done)
    assert isinstance(world.value(task.return_ids[0]), RayTaskError)


@pytest.mark.parametrize(
    ("cause", "retried"),
    [(ValueError("v"), True), (UnicodeError("subclass of ValueError"), True), (KeyError("k"), False)],
)
def test_retry_exceptions_list_retries_only_those_types(cause: BaseException, retried: bool) -> None:
    world = World()
    task = world.submit(retries=2, retry_exceptions=(ValueError,))
    outcome = world.manager.on_result(task, raised(task, cause))
    assert isinstance(outcome, Retry) is retried
    assert world.store.contains(task.return_ids[0]) is not retried


def test_retry_exceptions_list_matches_a_bare_exception() -> None:
    world = World()
    task = world.submit(retries=2, retry_exceptions=(OSError,))
    blob = serialization.to_inline(serialization.serialize(OSError("disk"), serialization.FLAG_ERROR))
    result = TaskResult([ReturnObject(task.return_ids[0], blob, len(blob), None)], True, 0.0)
    assert isinstance(world.manager.on_result(task, result), Retry)


def test_retry_exceptions_list_with_an_error_stored_out_of_line_is_not_retried() -> None:
    world = World()
    task = world.submit(retries=2, retry_exceptions=(ValueError,))
    result = TaskResult([ReturnObject(task.return_ids[0], None, 10, NodeID.from_random())], True, 0.0)
    assert isinstance(world.manager.on_result(task, result), Done)


def test_cancelled_task_whose_worker_dies_fails_with_task_cancelled_error() -> None:
    world = World()
    task = world.submit(retries=3)
    task.cancelled = True
    assert world.manager.on_worker_died(task, "killed for cancel") == Done(task)
    error = world.value(task.return_ids[0])
    assert isinstance(error, TaskCancelledError)
    assert error.task_id == task.task_id.hex()


def test_cancelled_task_error_is_not_retried() -> None:
    world = World()
    task = world.submit(retries=3, retry_exceptions=True)
    task.cancelled = True
    assert isinstance(world.manager.on_result(task, raised(task, ValueError())), Done)


def test_a_failed_argument_fails_the_task_with_its_own_error() -> None:
    world = World()
    task = world.submit()
    upstream = RayTaskError("producer", "Traceback...\nKeyError: 'arg failed'", KeyError("arg failed"))
    blob = serialization.to_inline(serialization.serialize(upstream, serialization.FLAG_ERROR))
    world.manager.fail_with_argument(task, blob)
    error = world.value(task.return_ids[0])
    assert isinstance(error, RayTaskError) and isinstance(error.cause, KeyError)
    assert error.function_name == task.spec.name  # the task's own error, as in Ray
    assert "could not be computed" in str(error) and "manta::producer()" in str(error)
    stored = world.store.get(task.return_ids[0])
    assert stored is not None and stored.is_error
    # A system error upstream (no RayTaskError) becomes the cause itself.
    other = world.submit()
    crashed = serialization.to_inline(
        serialization.serialize(WorkerCrashedError("died"), serialization.FLAG_ERROR)
    )
    world.manager.fail_with_argument(other, crashed)
    assert isinstance(world.value(other.return_ids[0]).cause, WorkerCrashedError)


def test_completion_releases_argument_refs() -> None:
    world = World()
    arg = ObjectID.for_put(DRIVER_TASK, 0)
    world.refs.add_owned(arg)
    world.refs.add_submitted([(arg, None)])
    task = world.submit(arg_refs=[ObjectRef(arg)])
    assert world.refs.collect() == []
    world.manager.on_result(task, ok(task))
    assert not task.arg_refs
    assert [f.object_id for f in world.refs.collect()] == [arg]


def _returning(task: PendingTask, nested: list[NestedRef]) -> TaskResult:
    blob = serialization.to_inline(serialization.serialize("with refs"))
    rets = [ReturnObject(oid, blob, len(blob), None, nested) for oid in task.return_ids]
    return TaskResult(rets, False, 0.01)


def test_refs_returned_inside_a_result_live_as_long_as_the_result() -> None:
    world = World()
    mine = ObjectID.for_put(DRIVER_TASK, 1)  # owned here: the worker registered us as borrower
    world.refs.add_owned(mine)
    world.refs.add_borrower(mine, ME, NODE)
    theirs = ObjectID.for_put(TaskID.for_normal_task(JOB), 0)
    task = world.submit()
    world.refs.add_local(task.return_ids[0], None)  # the caller's ref to the result
    world.manager.on_result(task, _returning(task, [NestedRef(mine, OWNER), NestedRef(theirs, OTHER)]))
    assert world.refs.collect() == []  # the result holds both
    assert world.refs.needs_registration(theirs) is None  # registered by the worker for us
    world.refs.drop_local(task.return_ids[0])
    freed = {f.object_id: f for f in world.refs.collect()}
    assert set(freed) == {task.return_ids[0], mine, theirs}
    assert freed[mine].owned and freed[mine].owner is None
    assert freed[theirs].owner == OTHER  # tell the owner we no longer borrow it


def test_refs_inside_an_unwanted_result_are_released_at_once() -> None:
    world = World()
    theirs = ObjectID.for_put(TaskID.for_normal_task(JOB), 0)
    task = world.submit()
    world.refs.add_local(task.return_ids[0], None)
    world.refs.drop_local(task.return_ids[0])  # nobody wants the result any more
    world.refs.collect()
    done = world.manager.on_result(task, _returning(task, [NestedRef(theirs, OTHER)]))
    assert isinstance(done, Done) and len(done.unwanted) == 1
    assert world.refs.collect() == [Freed(theirs, owned=False, owner=OTHER, registrations=1)]


def test_children_are_tracked_per_parent() -> None:
    world = World()
    parent = TaskID.for_normal_task(JOB)
    first, second = world.submit(parent=parent), world.submit(parent=parent)
    assert list(world.manager.children[parent]) == [first.task_id, second.task_id]
    world.manager.on_result(first, ok(first))
    assert list(world.manager.children[parent]) == [second.task_id]
    world.manager.on_worker_died(second, "died")
    assert parent not in world.manager.children


def _stored(task: PendingTask) -> TaskResult:
    """A result that went to a node's store (so it can be lost with it)."""
    return TaskResult(
        [ReturnObject(oid, None, 10 * 1024 * 1024, NODE) for oid in task.return_ids], False, 0.01
    )


def test_a_lost_stored_result_is_made_again_by_its_task() -> None:
    world = World()
    arg = ObjectID.for_put(DRIVER_TASK, 3)
    world.refs.add_owned(arg)
    world.refs.add_local(arg, None)  # the caller still holds the argument
    world.refs.add_submitted([(arg, None)])
    task = world.submit(retries=2, arg_refs=[ObjectRef(arg)])
    task.resolved = [ArgValue(arg, None, NODE, 100)]
    world.manager.on_result(task, _stored(task))
    assert world.manager.lineage[task.task_id] is task
    assert world.refs.collect() == []  # nothing freed: the caller holds both
    retry = world.manager.reconstruct(task.return_ids[0])
    assert isinstance(retry, Retry) and retry.task is task
    assert task.spec.attempt == 1 and task.retries_left == 1
    assert [r.id for r in task.arg_refs] == [arg] and task.resolved == []  # resolved afresh
    assert task.task_id in world.manager.tasks and task.task_id not in world.manager.lineage
    assert world.manager.reconstruct(task.return_ids[0]) is None  # already running again
    world.manager.on_result(task, _stored(task))
    assert task.task_id in world.manager.lineage  # and can be rebuilt again
    world.refs.drop_local(arg)
    assert [f.object_id for f in world.refs.collect()] == [arg]  # the re-run released it


def test_lineage_is_forgotten_once_the_results_are_freed() -> None:
    world = World()
    task = world.submit(retries=1)
    world.manager.on_result(task, _stored(task))
    assert task.task_id in world.manager.lineage
    world.refs.add_local(task.return_ids[0], None)
    world.refs.drop_local(task.return_ids[0])
    freed = [f.object_id for f in world.refs.collect()]
    world.manager.release_lineage(freed)
    assert world.manager.lineage == {}


def test_results_held_inline_keep_no_lineage() -> None:
    world = World()
    task = world.submit(retries=1)
    world.manager.on_result(task, ok(task))
    assert world.manager.lineage == {}
    error = world.manager.reconstruct(task.return_ids[0])
    assert isinstance(error, ObjectReconstructionFailedError)
    assert "no longer known" in str(error)


def test_what_cannot_be_made_again_says_why() -> None:
    world = World()
    put_error = world.manager.reconstruct(ObjectID.for_put(DRIVER_TASK, 9))
    assert isinstance(put_error, ObjectReconstructionFailedError) and "made by put()" in str(put_error)
    no_retries = world.submit(retries=0)
    world.manager.on_result(no_retries, _stored(no_retries))
    error = world.manager.reconstruct(no_retries.return_ids[0])
    assert isinstance(error, ObjectReconstructionFailedError) and "no retries left" in str(error)
    arg = ObjectID.for_put(DRIVER_TASK, 4)
    world.refs.add_owned(arg)
    world.refs.add_submitted([(arg, None)])
    task = world.submit(retries=3, arg_refs=[ObjectRef(arg)])
    world.manager.on_result(task, _stored(task))
    world.refs.collect()  # the argument had no other holder: freed
    error = world.manager.reconstruct(task.return_ids[0])
    assert isinstance(error, ObjectReconstructionFailedError)
    assert f"argument {arg.hex()} has been freed" in str(error)
    assert task.task_id in world.manager.lineage  # unchanged: still known, still not rebuildable


def test_a_task_whose_argument_keeps_getting_lost_fails_after_a_few_rounds() -> None:
    world = World()
    arg = ObjectID.for_put(DRIVER_TASK, 5)
    task = world.submit(retries=0, arg_refs=[ObjectRef(arg)])
    lost = TaskResult([], False, 0.0, lost_args=[arg])
    for _ in range(MAX_LOST_ARG_ROUNDS):
        retry = world.manager.on_result(task, lost)
        assert isinstance(retry, Retry) and [r.id for r in retry.lost_args] == [arg]
        assert task.retries_left == 0  # not a retry: the task never ran
    done = world.manager.on_result(task, lost)
    assert isinstance(done, Done)
    error = world.value(task.return_ids[0])
    assert isinstance(error, ObjectLostError) and "lost this argument" in str(error)


def test_a_reply_with_the_wrong_results_fails_the_task_and_touches_no_other_object() -> None:
    world = World()
    bystander = world.submit()
    task = world.submit()
    blob = serialization.to_inline(serialization.serialize("forged"))
    forged = TaskResult([ReturnObject(bystander.return_ids[0], blob, len(blob), None)], False, 0.01)
    assert isinstance(world.manager.on_result(task, forged), Done)
    error = world.value(task.return_ids[0])
    assert isinstance(error, RaySystemError) and "wrong results" in str(error)
    assert world.store.get(bystander.return_ids[0]) is None  # still pending, not forged


def _chain() -> tuple[World, PendingTask, PendingTask, ObjectID]:
    """first() -> a; second(a) -> b, both stored; only b is kept by the driver."""
    world = World()
    first = world.submit(retries=2)
    world.manager.on_result(first, _stored(first))
    a = first.return_ids[0]
    world.refs.add_submitted([(a, None)])
    second = world.submit(retries=2, arg_refs=[ObjectRef(a)])
    second.resolved = [ArgValue(a, None, NODE, 100)]
    world.manager.on_result(second, _stored(second))
    world.refs.add_local(second.return_ids[0], None)
    return world, first, second, a


def test_a_freed_argument_made_by_a_task_is_made_again_first() -> None:
    world, first, second, a = _chain()
    freed = [f.object_id for f in world.refs.collect()]
    assert freed == [a]  # the driver never held a
    world.manager.release_lineage(freed)
    assert first.task_id in world.manager.lineage  # kept: second may need a again

    retry = world.manager.reconstruct(second.return_ids[0])
    assert isinstance(retry, Retry) and retry.task is second and not retry.failed
    [before] = retry.before
    assert before.task is first and first.task_id in world.manager.tasks
    assert world.refs.is_owned(a) and [r.id for r in second.arg_refs] == [a]

    # Both run again; once b is dropped, both records go.
    world.manager.on_result(first, _stored(first))
    world.manager.on_result(second, _stored(second))
    world.refs.drop_local(second.return_ids[0])
    freed = [f.object_id for f in world.refs.collect()]
    world.manager.release_lineage(freed)
    world.manager.release_lineage([f.object_id for f in world.refs.collect()])
    assert world.manager.lineage == {}


def test_a_rerun_that_fails_lets_go_of_the_lineage_it_held() -> None:
    world, first, second, _a = _chain()
    world.manager.release_lineage([f.object_id for f in world.refs.collect()])
    assert first.task_id in world.manager.lineage  # held: second may need a again
    retry = world.manager.reconstruct(second.return_ids[0])
    assert isinstance(retry, Retry)
    world.manager.on_result(first, _stored(first))
    # The re-run of second fails this time: it keeps no lineage, nor does first any more
    # once a is freed (it used to stay for good, held by second's count).
    world.manager.on_result(second, raised(second, ValueError("not this time")))
    assert second.task_id not in world.manager.lineage
    world.manager.release_lineage([f.object_id for f in world.refs.collect()])
    assert world.manager.lineage == {}
