"""Why a task has not finished, from a store, nodes and actors made up for each reason."""

from __future__ import annotations

from manta._private.common import task_events as te
from manta._private.common.ids import ActorID, JobID, NodeID, ObjectID, TaskID, WorkerID
from manta._private.gcs.task_event_store import TaskEventStore
from manta._private.gcs.task_why import DeadWorkers, NodeResources, explain

JOB = JobID.from_int(1)
NODE = NodeID.from_random()
WHERE = (bytes(NODE), bytes(WorkerID.from_random()), 77)


def node(total: dict, available: dict, alive: bool = True) -> NodeResources:
    return NodeResources(bytes(NODE).hex(), alive, total, available)


def define(store, tid, state, name="f", resources=None, args=(), actor=None):  # type: ignore[no-untyped-def]
    kind = te.NORMAL_TASK if actor is None else te.ACTOR_TASK
    entry = [
        tid,
        0,
        state,
        1.0,
        name,
        name,
        kind,
        bytes(JOB),
        None,
        actor,
        resources or {"CPU": 1.0},
        None,
        list(args),
    ]
    store.add([entry], [], 0, WHERE)


def new_task() -> bytes:
    return bytes(TaskID.for_normal_task(JOB))


def no_actors(_actor_id: bytes) -> None:
    return None


def why(store, tid, nodes=(), actors=no_actors, dead=None, now=10.0):  # type: ignore[no-untyped-def]
    return "\n".join(explain(store, tid, list(nodes), actors, dead or DeadWorkers(), now))


def test_an_argument_chain_is_followed_to_the_running_task() -> None:
    store = TaskEventStore(100)
    producer, consumer = new_task(), new_task()
    define(store, producer, te.PENDING_NODE_ASSIGNMENT, name="load")
    store.add([], [[producer, 0, te.RUNNING, 4.0]], 0, WHERE)
    arg = bytes(ObjectID.for_return(TaskID(producer), 0))
    define(store, consumer, te.PENDING_ARGS_AVAIL, name="train", args=[arg])
    text = why(store, consumer)
    assert f"task train ({consumer.hex()}, attempt 0) waits for 1 argument(s):" in text
    assert f"argument {arg.hex()} is a result of:" in text
    assert (
        f"task load ({producer.hex()}, attempt 0) is running, for 6.0 s" in text and "worker pid 77" in text
    )


def test_a_put_argument_and_a_cycle_do_not_recurse() -> None:
    store = TaskEventStore(100)
    tid = new_task()
    put = bytes(ObjectID.for_put(TaskID(tid), 1))
    own = bytes(ObjectID.for_return(TaskID(tid), 0))  # not possible for real: stops anyway
    define(store, tid, te.PENDING_ARGS_AVAIL, args=[put, own])
    text = why(store, tid)
    assert "an object put by the process that owns it" in text and "explained above" in text


def test_infeasible_and_busy_resources_are_told_apart() -> None:
    store = TaskEventStore(100)
    gpu, cpu, holder = new_task(), new_task(), new_task()
    define(store, gpu, te.PENDING_NODE_ASSIGNMENT, resources={"CPU": 1.0, "GPU": 1.0})
    define(store, cpu, te.PENDING_NODE_ASSIGNMENT)
    define(store, holder, te.PENDING_NODE_ASSIGNMENT, name="hog")
    store.add([], [[holder, 0, te.RUNNING, 2.0]], 0, WHERE)
    nodes = [node({"CPU": 1.0, "memory": 2e9}, {"CPU": 0.0})]
    assert "no node can ever run it: it needs {CPU: 1, GPU: 1}" in why(store, gpu, nodes)
    assert "memory: 2000000000" in why(store, gpu, nodes)
    busy = why(store, cpu, nodes)
    assert "every node that could run it has them in use, held by running tasks: hog" in busy
    assert holder.hex() in busy
    free = [node({"CPU": 1.0}, {"CPU": 1.0})]
    assert "its worker is being started or leased" in why(store, cpu, free)
    assert "no node is alive" in why(store, cpu, [node({"CPU": 1.0}, {}, alive=False)])


def test_an_actor_call_is_explained_by_its_actor() -> None:
    store = TaskEventStore(100)
    actor = bytes(ActorID.of(JOB))
    call = new_task()
    define(store, call, te.PENDING_ARGS_AVAIL, name="A.m", actor=actor)

    def dead(actor_id: bytes) -> tuple[str, str]:
        assert actor_id == actor
        return "DEAD", "its constructor raised RuntimeError"

    assert f"waits for its actor {actor.hex()}, which is DEAD (its constructor raised" in why(
        store, call, actors=dead
    )
    assert "calls before it go first" in why(store, call, actors=lambda _a: ("ALIVE", ""))
    assert "which the gcs does not know" in why(store, call)


def test_ended_and_unknown_tasks() -> None:
    store = TaskEventStore(100)
    done, failed = new_task(), new_task()
    define(store, done, te.PENDING_NODE_ASSIGNMENT)
    define(store, failed, te.PENDING_NODE_ASSIGNMENT)
    store.add(
        [],
        [
            [done, 0, te.FINISHED, 2.0],
            [failed, 0, te.FAILED, 2.0, "TASK_EXECUTION_EXCEPTION", "KeyError: x\nmore"],
        ],
        0,
    )
    assert why(store, done).endswith("finished")
    assert why(store, failed).endswith("failed: TASK_EXECUTION_EXCEPTION: KeyError: x")
    assert "no record of it" in why(store, new_task())


def test_a_task_whose_owner_died_will_never_finish() -> None:
    store = TaskEventStore(100)
    orphan, done = new_task(), new_task()
    owner = WHERE[1]  # the reporter of a definition is the task's owner
    define(store, orphan, te.PENDING_NODE_ASSIGNMENT, resources={"GPU": 1.0})
    define(store, done, te.PENDING_NODE_ASSIGNMENT)
    store.add([], [[done, 0, te.FINISHED, 2.0]], 0)
    dead = DeadWorkers()
    dead.add(owner, "died on node 1234 (killed by signal 9)")
    text = why(store, orphan, dead=dead)
    assert (
        f"will never finish: its owner, worker {owner.hex()}, died on node 1234 (killed by signal 9)" in text
    )
    assert "OwnerDiedError" in text and "infeasible" not in text
    assert why(store, done, dead=dead).endswith("finished")  # what ended is told as it ended
    assert "infeasible" in why(store, orphan)  # its owner alive: the usual reason


def test_dead_workers_are_bounded_and_keep_the_newest() -> None:
    dead = DeadWorkers(limit=3)
    for i in range(5):
        dead.add(bytes([i]), f"death {i}")
    assert [dead.get(bytes([i])) for i in range(5)] == [None, None, "death 2", "death 3", "death 4"]
