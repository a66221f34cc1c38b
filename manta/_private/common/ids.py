"""Typed identifiers.

Every id is an immutable ``bytes`` subclass of a fixed size, so ids hash and compare as
their raw bytes, travel over msgpack with no conversion, and still carry their type in
signatures. Sizes follow Ray's so that hex lengths match what Ray programs and tests see:

    JobID 4 | ActorID 16 = 12 unique + JobID | TaskID 24 = 8 unique + ActorID
    ObjectID 28 = TaskID + 4-byte index | NodeID, WorkerID 28 | PlacementGroupID 18

A task's job and an object's task are recovered by slicing, never by a table lookup.
"""

from __future__ import annotations

import os
import random
from typing import ClassVar, TypeVar

_T = TypeVar("_T", bound="BaseID")

# Ids are drawn from a per-process generator seeded from the OS: os.urandom is a system
# call per id, which on the task hot path also hands the GIL to the I/O thread. 64-bit
# task ids from a good generator collide only after ~4 billion tasks of one job.
_rng = random.Random(os.urandom(32))


def _reseed() -> None:
    _rng.seed(os.urandom(32))


# A forked worker must not repeat its template's (or siblings') sequence.
os.register_at_fork(after_in_child=_reseed)


def random_bytes(n: int) -> bytes:
    return _rng.getrandbits(8 * n).to_bytes(n, "little")


class BaseID(bytes):
    """A fixed-size binary id. Construct from raw bytes, ``from_hex`` or ``from_random``."""

    __slots__ = ()
    SIZE: ClassVar[int] = 0

    def __new__(cls: type[_T], raw: bytes = b"") -> _T:
        if len(raw) != cls.SIZE:
            raise ValueError(f"{cls.__name__} needs {cls.SIZE} bytes, got {len(raw)}")
        return bytes.__new__(cls, raw)

    @classmethod
    def from_hex(cls: type[_T], text: str) -> _T:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a hex {cls.__name__}") from None
        return cls(raw)

    @classmethod
    def from_random(cls: type[_T]) -> _T:
        return cls(random_bytes(cls.SIZE))

    @classmethod
    def nil(cls: type[_T]) -> _T:
        return cls(b"\xff" * cls.SIZE)

    def is_nil(self) -> bool:
        return self == b"\xff" * self.SIZE

    def binary(self) -> bytes:
        return bytes(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.hex()})"

    def __str__(self) -> str:
        return self.hex()

    def __reduce__(self) -> tuple[type, tuple[bytes]]:
        return (type(self), (bytes(self),))


_NIL_ACTOR_PART = b"\xff" * 12


class JobID(BaseID):
    __slots__ = ()
    SIZE = 4

    @classmethod
    def from_int(cls, value: int) -> JobID:
        return cls(value.to_bytes(4, "little"))

    def int(self) -> int:
        return int.from_bytes(self, "little")


class ActorID(BaseID):
    __slots__ = ()
    SIZE = 16

    @classmethod
    def nil_for_job(cls, job_id: JobID) -> ActorID:
        return cls(b"\xff" * 12 + job_id)

    @classmethod
    def of(cls, job_id: JobID) -> ActorID:
        return cls(random_bytes(12) + job_id)

    def job_id(self) -> JobID:
        return JobID(self[12:])


class TaskID(BaseID):
    __slots__ = ()
    SIZE = 24

    @classmethod
    def for_normal_task(cls, job_id: JobID) -> TaskID:
        # bytes.__new__: the parts' sizes add up, no check needed (made for every task).
        return bytes.__new__(cls, random_bytes(8) + _NIL_ACTOR_PART + job_id)

    @classmethod
    def for_driver(cls, job_id: JobID) -> TaskID:
        # Random like any task: the ids of a driver's puts must not repeat across sessions.
        return cls(random_bytes(8) + _NIL_ACTOR_PART + job_id)

    @classmethod
    def for_actor_task(cls, actor_id: ActorID) -> TaskID:
        return bytes.__new__(cls, random_bytes(8) + actor_id)

    @classmethod
    def for_actor_creation(cls, actor_id: ActorID) -> TaskID:
        """The same for every creation of the actor: its owner and its worker both name it."""
        return cls(bytes(8) + actor_id)

    def job_id(self) -> JobID:
        return JobID(self[20:])

    def actor_id(self) -> ActorID:
        return ActorID(self[8:])


_PUT_FLAG = 0x80000000


class ObjectID(BaseID):
    """TaskID of the creating task + a 4-byte index: 1..n for returns, high bit set for puts."""

    __slots__ = ()
    SIZE = 28

    @classmethod
    def for_return(cls, task_id: TaskID, index: int) -> ObjectID:
        return bytes.__new__(cls, task_id + (index + 1).to_bytes(4, "little"))

    @classmethod
    def for_put(cls, task_id: TaskID, put_index: int) -> ObjectID:
        return cls(task_id + (put_index | _PUT_FLAG).to_bytes(4, "little"))

    def task_id(self) -> TaskID:
        return TaskID(self[:24])

    def return_index(self) -> int:
        """For a return id, the ``index`` it was made with (``for_return(task, index)``)."""
        return int.from_bytes(self[24:], "little") - 1

    def job_id(self) -> JobID:
        return JobID(self[20:24])

    def is_put(self) -> bool:
        return bool(int.from_bytes(self[24:], "little") & _PUT_FLAG)


class NodeID(BaseID):
    __slots__ = ()
    SIZE = 28


class WorkerID(BaseID):
    __slots__ = ()
    SIZE = 28


class PlacementGroupID(BaseID):
    __slots__ = ()
    SIZE = 18


class LeaseID(BaseID):
    __slots__ = ()
    SIZE = 12
