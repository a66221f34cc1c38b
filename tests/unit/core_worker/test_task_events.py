"""A process's task-event buffer: bounded, packed for the gcs, Ray's error types."""

from __future__ import annotations

import msgpack

from manta._private.common import task_events as te
from manta._private.common.ids import ActorID, JobID, TaskID
from manta._private.core_worker.task_events import TaskEventBuffer, error_type, qualified_name
from manta._private.rpc import codec
from manta._private.rpc.messages import TaskSpec
from manta.exceptions import ActorDiedError, OwnerDiedError, TaskCancelledError, WorkerCrashedError
from tests.unit.rpc.test_codec import task_spec

JOB = JobID.from_int(1)


def spec(actor: bool = False) -> TaskSpec:
    base = task_spec()
    return codec.replace(
        base,
        task_id=TaskID.for_normal_task(JOB),
        actor_id=ActorID.of(JOB) if actor else None,
        function_name="tests.unit.core_worker.test_task_events.f",
        placement_group=None,
    )


def test_events_are_taken_once_and_packed() -> None:
    buffer = TaskEventBuffer(100)
    s = spec()
    buffer.define(s, te.PENDING_NODE_ASSIGNMENT, [])
    buffer.transition(s, te.SUBMITTED_TO_WORKER)
    buffer.failed(s, ValueError("bad"))
    definitions, transitions, dropped, count = buffer.take()
    [definition] = msgpack.unpackb(definitions)
    assert definition[:3] == [bytes(s.task_id), 0, te.PENDING_NODE_ASSIGNMENT]
    assert definition[5:7] == ["f", te.NORMAL_TASK]  # the module is not part of the name
    assert [t[2] for t in msgpack.unpackb(transitions)] == [te.SUBMITTED_TO_WORKER, te.FAILED]
    assert msgpack.unpackb(transitions)[1][4:] == ["TASK_EXECUTION_EXCEPTION", "ValueError: bad"]
    assert (dropped, count) == (0, 3)
    assert buffer.take() is None


def test_a_failures_text_is_kept_whole_or_cut_in_the_middle() -> None:
    buffer = TaskEventBuffer(100)
    s = spec()
    frames = "".join(f'  File "m.py", line {i}, in f{i}\n' for i in range(200))
    buffer.failed(s, ValueError("bad"), "ray::f()\n" + frames + "ValueError: bad")
    buffer.failed(s, ValueError("bad"), "ray::f()\nValueError: bad")
    long, short = (t[5] for t in msgpack.unpackb(buffer.take()[1]))
    assert len(long) == te.MAX_ERROR_MESSAGE and long.startswith("ray::f()\n  File")
    assert long.endswith("in f199\nValueError: bad") and "\n  ...\n" in long
    assert short == "ray::f()\nValueError: bad"


def test_a_full_buffer_drops_and_counts() -> None:
    buffer = TaskEventBuffer(2)
    s = spec(actor=True)
    for _ in range(5):
        buffer.transition(s, te.RUNNING)
    _definitions, transitions, dropped, count = buffer.take()
    assert (len(msgpack.unpackb(transitions)), dropped, count) == (2, 3, 2)
    buffer.lost(4)
    assert buffer.take()[2] == 4  # a report that could not be sent is counted too


def test_a_buffer_of_nothing_records_nothing() -> None:
    buffer = TaskEventBuffer(0)
    buffer.define(spec(), te.PENDING_NODE_ASSIGNMENT, [])
    assert not buffer.has_events() and buffer.take() is None


def test_errors_map_to_rays_error_types() -> None:
    assert error_type(TaskCancelledError("t")) == "TASK_CANCELLED"
    assert error_type(WorkerCrashedError("w")) == "WORKER_DIED"
    assert error_type(OwnerDiedError("o")) == "OWNER_DIED"  # not its base, ObjectLostError
    assert error_type(ActorDiedError()) == "ACTOR_DIED"
    assert error_type(KeyError("k")) == "TASK_EXECUTION_EXCEPTION"


def test_a_qualified_name_loses_its_module() -> None:
    assert qualified_name("tests.unit.core_worker.test_task_events.Outer.f") == "Outer.f"
    assert qualified_name("no_such_module.f") == "no_such_module.f"
