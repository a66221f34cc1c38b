"""The task-event store: rows from events in any order, bounds, bad events, listings."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from manta._private.common import task_events as te
from manta._private.common.ids import ActorID, JobID, NodeID, TaskID, WorkerID
from manta._private.gcs.task_event_store import TaskEventStore

JOB = JobID.from_int(1)
NODE = NodeID.from_random()
WORKER = WorkerID.from_random()


def task(_i: int = 0) -> bytes:
    return bytes(TaskID.for_normal_task(JOB))


def define(tid: bytes, at: float, name: str = "f", kind: int = te.NORMAL_TASK, attempt: int = 0) -> list:
    parent = bytes(TaskID.for_driver(JOB))
    actor = bytes(ActorID.of(JOB)) if kind != te.NORMAL_TASK else None
    return [
        tid,
        attempt,
        te.PENDING_NODE_ASSIGNMENT,
        at,
        name,
        f"mod.{name}",
        kind,
        bytes(JOB),
        parent,
        actor,
        {"CPU": 1.0},
        None,
        [],
    ]


WHERE = (bytes(NODE), bytes(WORKER), 4242)


def ran(tid: bytes, at: float, attempt: int = 0) -> list:
    return [tid, attempt, te.RUNNING, at]


def test_a_task_moves_through_its_states() -> None:
    store = TaskEventStore(100)
    tid = task(0)
    store.add(
        [define(tid, 1.0)],
        [[tid, 0, te.SUBMITTED_TO_WORKER, 2.0], ran(tid, 3.0), [tid, 0, te.FINISHED, 4.0]],
        0,
        WHERE,
    )
    [rec] = store.query([], 100, detail=True).records
    assert rec["state"] == "FINISHED" and rec["name"] == "f" and rec["func_or_class_name"] == "mod.f"
    assert rec["task_id"] == tid.hex() and rec["job_id"] == bytes(JOB).hex() and rec["type"] == "NORMAL_TASK"
    assert (
        rec["node_id"] == bytes(NODE).hex()
        and rec["worker_id"] == bytes(WORKER).hex()
        and rec["worker_pid"] == 4242
    )
    assert (rec["creation_time_ms"], rec["start_time_ms"], rec["end_time_ms"]) == (1000, 3000, 4000)
    assert [e["state"] for e in rec["events"]] == [
        "PENDING_NODE_ASSIGNMENT",
        "SUBMITTED_TO_WORKER",
        "RUNNING",
        "FINISHED",
    ]
    assert rec["required_resources"] == {"CPU": 1.0} and rec["language"] == "PYTHON"


def test_events_arriving_out_of_order_keep_the_end() -> None:
    # The worker's RUNNING and FINISHED can reach the store before the owner's definition.
    store = TaskEventStore(100)
    tid = task(0)
    store.add([], [[tid, 0, te.FINISHED, 4.0], ran(tid, 3.0)], 0, WHERE)
    store.add([define(tid, 1.0)], [[tid, 0, te.SUBMITTED_TO_WORKER, 2.0]], 0)
    [rec] = store.query([], 10, detail=False).records
    assert rec["state"] == "FINISHED" and rec["name"] == "f" and rec["worker_pid"] == 4242


def test_a_failure_carries_its_error_and_a_retry_is_its_own_row() -> None:
    store = TaskEventStore(100)
    tid = task(0)
    store.add([define(tid, 1.0)], [[tid, 0, te.FAILED, 2.0, "ValueError", "bad " * 1000]], 0)
    store.add([], [[tid, 1, te.PENDING_NODE_ASSIGNMENT, 3.0], ran(tid, 4.0, attempt=1)], 0, WHERE)
    first, retry = store.query([], 10, detail=True).records
    assert first["state"] == "FAILED" and first["error_type"] == "ValueError"
    assert len(first["error_message"]) == te.MAX_ERROR_MESSAGE
    assert retry["attempt_number"] == 1 and retry["state"] == "RUNNING" and retry["name"] == "f"


def test_without_detail_the_detail_columns_are_none() -> None:
    store = TaskEventStore(10)
    tid = task(0)
    store.add([define(tid, 1.0)], [], 0)
    [rec] = store.query([], 10, detail=False).records
    assert set(rec) == set(te.COLUMNS) | set(te.DETAIL_COLUMNS)
    assert all(rec[c] is None for c in te.DETAIL_COLUMNS)


def test_filters_limit_and_counts() -> None:
    store = TaskEventStore(100)
    ids = [task(i) for i in range(10)]
    store.add([define(t, float(i), name="a" if i % 2 else "b") for i, t in enumerate(ids)], [], 0)
    store.add([], [[ids[0], 0, te.FINISHED, 20.0]], 0)
    listing = store.query([("name", "=", "a")], 2, detail=False)
    assert (listing.total, listing.matched, len(listing.records)) == (10, 5, 2)
    assert [r["task_id"] for r in listing.records] == [ids[1].hex(), ids[3].hex()]  # oldest first
    assert store.query([("state", "=", "finished")], 100, False).matched == 1  # any case
    assert store.query([("state", "!=", "FINISHED")], 100, False).matched == 9
    assert store.query([("task_id", "=", ids[4].hex())], 100, False).records[0]["name"] == "b"
    # A page further on: the offset counts matching rows only.
    page = store.query([("name", "=", "a")], 2, False, offset=3)
    assert [r["task_id"] for r in page.records] == [ids[7].hex(), ids[9].hex()] and page.matched == 5
    assert store.query([("name", "=", "a")], 2, False, offset=5).records == []
    # Counts alone come from the tallies; a page of everything is not filtered: the same answers.
    assert store.query([("state", "=", "finished")], 0, False).matched == 1
    assert store.query([("state", "=", "PENDING_NODE_ASSIGNMENT")], 0, False).matched == 9
    assert store.query([("state", "=", "no-such-state")], 0, False).matched == 0
    everything = store.query([], 3, False, offset=8)
    assert everything.matched == 10 and [r["task_id"] for r in everything.records] == [
        ids[8].hex(),
        ids[9].hex(),
    ]


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (("colour", "=", "red"), "Cannot filter tasks by 'colour': the filterable columns are task_id"),
        (("state", ">", "RUNNING"), "Unsupported filter operator '>': use one of =, !="),
    ],
)
def test_bad_filters_say_what_is_valid(condition: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TaskEventStore(10).query([condition], 10, False)


def test_the_oldest_rows_are_evicted_and_counted() -> None:
    store = TaskEventStore(3)
    ids = [task(i) for i in range(5)]
    store.add([define(t, float(i)) for i, t in enumerate(ids)], [], dropped=7)
    listing = store.query([], 10, False)
    assert [r["task_id"] for r in listing.records] == [t.hex() for t in ids[2:]]
    assert listing.dropped == 7 and store.evicted == 2 and store.summary()["evicted"] == 2


def test_summary_counts_by_function_and_state() -> None:
    store = TaskEventStore(100)
    a, b, c = task(0), task(1), task(2)
    store.add(
        [define(a, 1.0, "f"), define(b, 1.0, "f"), define(c, 1.0, "m", kind=te.ACTOR_TASK)],
        [[a, 0, te.FINISHED, 2.0]],
        0,
    )
    summary = store.summary()
    assert summary["summary"]["mod.f"]["state_counts"] == {"FINISHED": 1, "PENDING_NODE_ASSIGNMENT": 1}
    assert summary["summary"]["mod.m"]["type"] == "ACTOR_TASK"
    assert (summary["total_tasks"], summary["total_actor_tasks"]) == (2, 1)


def test_malformed_events_are_counted_and_skipped() -> None:
    store = TaskEventStore(100)
    good = task(0)
    bad = [
        "not a list",
        [b"short", 0, te.RUNNING, 1.0],
        [good, -1, te.RUNNING, 1.0],
        [good, 0, 99, 1.0],
        [good, 0, te.RUNNING, "noon"],
        [good, 0],
    ]
    bad_definitions = [
        define(good, 1.0)[:5],
        [*define(good, 1.0)[:10], "not a dict", None, []],
        [*define(good, 1.0)[:12], [b"not an object id"]],
    ]
    store.add(bad_definitions, [*bad, [good, 0, te.RUNNING, 2.0]], dropped="many")  # type: ignore[arg-type]
    assert store.malformed == len(bad) + len(bad_definitions)
    assert len(store) == 1 and store.query([], 10, False).records[0]["state"] == "RUNNING"


def test_a_packed_batch_is_filed_and_a_bad_one_counted() -> None:
    store = TaskEventStore(10)
    tid = task()
    packed = msgpack.packb([define(tid, 1.0)]), msgpack.packb([ran(tid, 2.0)])
    store.add_batch([bytes(NODE), bytes(WORKER), 7], *packed, 0)
    [rec] = store.query([], 10, False).records
    assert (rec["state"], rec["worker_pid"], rec["node_id"]) == ("RUNNING", 7, bytes(NODE).hex())
    store.add_batch([bytes(NODE), bytes(WORKER), 7], b"\xc1", packed[1], 0)  # not msgpack
    store.add_batch([b"short", bytes(WORKER), 7], *packed, 0)  # a bad reporter
    store.add_batch([bytes(NODE), bytes(WORKER), 7], msgpack.packb({"not": "a list"}), packed[1], 0)
    assert store.malformed == 3 and len(store) == 1


@given(st.lists(st.integers(min_value=1, max_value=len(te.STATES) - 1), min_size=1, max_size=8), st.randoms())
def test_the_state_does_not_depend_on_arrival_order(states: list[int], rnd) -> None:  # type: ignore[no-untyped-def]
    tid = task(0)
    events = [[tid, 0, s, float(i)] for i, s in enumerate(states)]
    shuffled = list(events)
    rnd.shuffle(shuffled)
    one, two = TaskEventStore(10), TaskEventStore(10)
    one.add([], events, 0)
    two.add([], shuffled, 0)
    assert one.query([], 1, False).records[0]["state"] == two.query([], 1, False).records[0]["state"]


def test_the_timeline_has_every_attempt_that_ran() -> None:
    store = TaskEventStore(10)
    done, failed, running, waiting = task(), task(), task(), task()
    store.add(
        [define(t, 1.0, name=n) for t, n in ((done, "a"), (failed, "b"), (running, "c"), (waiting, "d"))],
        [
            ran(done, 2.0),
            [done, 0, te.FINISHED, 3.0],
            ran(failed, 2.5),
            [failed, 0, te.FAILED, 2.75, "X", "y"],
        ],
        0,
        WHERE,
    )
    store.add([], [ran(running, 4.0)], 0, WHERE)
    rows = {row[0]: row for row in store.timeline()}
    assert set(rows) == {done.hex(), failed.hex(), running.hex()}  # the waiting one never ran
    assert rows[done.hex()][2:] == [
        "a",
        "mod.a",
        "NORMAL_TASK",
        "FINISHED",
        bytes(NODE).hex(),
        4242,
        2.0,
        3.0,
    ]
    assert rows[failed.hex()][5] == "FAILED" and rows[running.hex()][9] is None


def test_a_task_sent_back_unrun_waits_again_and_an_end_is_final() -> None:
    store = TaskEventStore(10)
    tid = task()
    store.add(
        [define(tid, 1.0)],
        [[tid, 0, te.SUBMITTED_TO_WORKER, 2.0], [tid, 0, te.PENDING_NODE_ASSIGNMENT, 3.0]],
        0,
    )
    assert store.query([], 1, False).records[0]["state"] == "PENDING_NODE_ASSIGNMENT"
    store.add([], [[tid, 0, te.FINISHED, 4.0], [tid, 0, te.SUBMITTED_TO_WORKER, 5.0]], 0)  # a late event
    assert store.query([], 1, False).records[0]["state"] == "FINISHED"
    store.add([], [[tid, 0, te.FAILED, 3.5, "WORKER_DIED", "x"]], 0)  # a failure outranks success
    assert store.query([], 1, False).records[0]["state"] == "FAILED"


def recount(store: TaskEventStore) -> dict:
    """The counts as a pass over every row makes them."""
    out: dict = {}
    for row in store.rows():
        key = (row.name or row.func, row.state, row.attempt > 0, row.job_id)
        out[key] = out.get(key, 0) + 1
    return out


def test_counts_follow_states_late_definitions_retries_and_eviction() -> None:
    store = TaskEventStore(3)
    a, b, c = task(), task(), task()
    job = bytes(JOB)
    store.add([define(a, 1.0, "f")], [ran(a, 2.0)], 0)
    assert store.counts() == {("f", te.RUNNING, False, job): 1}
    store.add([], [[b, 0, te.FINISHED, 3.0]], 0)  # its definition comes later
    assert store.counts()[("", te.FINISHED, False, None)] == 1
    store.add([define(b, 1.0, "g")], [[a, 0, te.FAILED, 4.0], [a, 1, te.PENDING_NODE_ASSIGNMENT, 5.0]], 0)
    assert store.counts() == {
        ("f", te.FAILED, False, job): 1,
        ("g", te.FINISHED, False, job): 1,
        ("f", te.PENDING_NODE_ASSIGNMENT, True, job): 1,  # the retry, named by attempt 0
    }
    store.add([define(c, 6.0, "h")], [], 0)  # a's first attempt is evicted
    assert store.counts() == {
        ("g", te.FINISHED, False, job): 1,
        ("f", te.PENDING_NODE_ASSIGNMENT, True, job): 1,
        ("h", te.PENDING_NODE_ASSIGNMENT, False, job): 1,
    }
    assert store.counts() == recount(store)


EVENT = st.tuples(
    st.integers(0, 5),  # which task
    st.integers(0, 1),  # attempt
    st.integers(1, len(te.STATES) - 1),
    st.floats(0, 10),
    st.sampled_from(["", "f", "g"]) | st.none(),  # a definition's name, or None: a transition
)


def definition(tid: bytes, attempt: int, state: int, at: float, name: str) -> list:
    out = define(tid, at, name, attempt=attempt)
    out[2] = state
    return out


@given(st.lists(st.lists(EVENT, max_size=6), max_size=8), st.integers(1, 6))
def test_the_kept_counts_are_a_recount_of_the_rows(batches: list, max_tasks: int) -> None:
    ids = [task() for _ in range(6)]
    store = TaskEventStore(max_tasks)
    for batch in batches:
        definitions = [definition(ids[i], a, s, at, name) for i, a, s, at, name in batch if name is not None]
        transitions = [[ids[i], a, s, at] for i, a, s, at, name in batch if name is None]
        store.add(definitions, transitions, 0)
        assert store.counts() == recount(store)
