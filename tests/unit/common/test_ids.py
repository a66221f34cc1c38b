"""Typed ids: fixed sizes, hex parsing, nil, and the slicing that recovers parents."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from manta._private.common.ids import (
    ActorID,
    BaseID,
    JobID,
    LeaseID,
    NodeID,
    ObjectID,
    PlacementGroupID,
    TaskID,
    WorkerID,
)

SIZES = {
    JobID: 4,
    ActorID: 16,
    TaskID: 24,
    ObjectID: 28,
    NodeID: 28,
    WorkerID: 28,
    PlacementGroupID: 18,
    LeaseID: 12,
}
ALL_IDS = list(SIZES)


@pytest.mark.parametrize("cls", ALL_IDS, ids=lambda c: c.__name__)
def test_size_matches_ray(cls: type[BaseID]) -> None:
    assert cls.SIZE == SIZES[cls]
    assert len(cls.from_random()) == SIZES[cls]
    assert len(cls.from_random().hex()) == 2 * SIZES[cls]


@pytest.mark.parametrize("cls", ALL_IDS, ids=lambda c: c.__name__)
def test_wrong_length_is_refused(cls: type[BaseID]) -> None:
    with pytest.raises(ValueError, match=f"{cls.__name__} needs {cls.SIZE} bytes, got {cls.SIZE + 1}"):
        cls(b"\x00" * (cls.SIZE + 1))
    with pytest.raises(ValueError, match="got 0"):
        cls()


@pytest.mark.parametrize("cls", ALL_IDS, ids=lambda c: c.__name__)
def test_hex_round_trip(cls: type[BaseID]) -> None:
    value = cls.from_random()
    back = cls.from_hex(value.hex())
    assert back == value
    assert type(back) is cls
    assert str(value) == value.hex()
    assert repr(value) == f"{cls.__name__}({value.hex()})"


def test_from_hex_rejects_non_hex() -> None:
    with pytest.raises(ValueError, match="'zz' is not a hex JobID"):
        JobID.from_hex("zz")


def test_from_hex_rejects_wrong_length() -> None:
    with pytest.raises(ValueError, match="JobID needs 4 bytes, got 3"):
        JobID.from_hex("aabbcc")


@pytest.mark.parametrize("cls", ALL_IDS, ids=lambda c: c.__name__)
def test_nil(cls: type[BaseID]) -> None:
    nil = cls.nil()
    assert nil.is_nil()
    assert nil == b"\xff" * cls.SIZE
    assert not cls(b"\x00" * cls.SIZE).is_nil()


@pytest.mark.parametrize("cls", ALL_IDS, ids=lambda c: c.__name__)
def test_pickle_keeps_type(cls: type[BaseID]) -> None:
    value = cls.from_random()
    back = pickle.loads(pickle.dumps(value))
    assert back == value
    assert type(back) is cls


def test_ids_hash_and_compare_as_bytes() -> None:
    raw = bytes(range(28))
    assert ObjectID(raw) == raw
    assert hash(ObjectID(raw)) == hash(raw)
    assert {ObjectID(raw): 1}[raw] == 1
    assert ObjectID(raw).binary() == raw
    assert type(ObjectID(raw).binary()) is bytes


def test_ids_are_immutable_slotted() -> None:
    value = NodeID.from_random()
    with pytest.raises(AttributeError):
        value.extra = 1  # type: ignore[attr-defined]


def test_job_id_int_round_trip() -> None:
    assert JobID.from_int(7).int() == 7
    assert JobID.from_int(7) == b"\x07\x00\x00\x00"


def test_actor_id_carries_job() -> None:
    job = JobID.from_int(3)
    assert ActorID.of(job).job_id() == job
    nil_actor = ActorID.nil_for_job(job)
    assert nil_actor.job_id() == job
    assert not nil_actor.is_nil()


def test_task_id_carries_job_and_actor() -> None:
    job = JobID.from_int(5)
    task = TaskID.for_normal_task(job)
    assert task.job_id() == job
    assert task.actor_id() == ActorID.nil_for_job(job)
    driver = TaskID.for_driver(job)
    assert driver.job_id() == job
    # Driver task ids differ per session, so put ids never repeat across sessions.
    assert TaskID.for_driver(job) != driver


@given(st.integers(min_value=0, max_value=2**31 - 2))
def test_object_id_for_return(index: int) -> None:
    task = TaskID.for_normal_task(JobID.from_int(9))
    oid = ObjectID.for_return(task, index)
    assert oid.task_id() == task
    assert type(oid.task_id()) is TaskID
    assert oid.job_id() == JobID.from_int(9)
    assert not oid.is_put()


@given(st.integers(min_value=0, max_value=2**31 - 1))
def test_object_id_for_put(index: int) -> None:
    task = TaskID.for_normal_task(JobID.from_int(9))
    oid = ObjectID.for_put(task, index)
    assert oid.task_id() == task
    assert oid.is_put()
    assert oid != ObjectID.for_return(task, index)


def test_return_indexes_start_at_one() -> None:
    task = TaskID.for_driver(JobID.from_int(1))
    assert ObjectID.for_return(task, 0)[24:] == (1).to_bytes(4, "little")
    assert len({ObjectID.for_return(task, i) for i in range(100)}) == 100
