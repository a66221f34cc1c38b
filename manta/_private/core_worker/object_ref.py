"""ObjectRef: a handle to a value that exists, or will, somewhere in the cluster.

A ref carries its object's id and its owner's address, so any process can resolve it by
asking the owner. Creating and dropping refs is counted by the core worker of the process
(see ``reference_counter``); serializing a ref into a value reports it as contained, and
loading one reports it so the loader registers as a borrower.

A ref pickled outside Manta's serializer (plain ``pickle``, ``cloudpickle``) is *out of
band*: the pickling process holds the object until a Manta process loads the pickle,
which registers as a borrower and then releases that hold. Each such pickle holds the
object once: load it more than once and the later loads may find it freed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import types
from collections.abc import Generator
from typing import Any, Protocol

from manta._private import serialization
from manta._private.common.ids import JobID, ObjectID, TaskID
from manta._private.rpc.messages import Address
from manta.exceptions import RaySystemError


class _Counts(Protocol):  # the reference counter
    def add_local(self, object_id: ObjectID, owner: Address | None) -> None: ...

    def drop_local(self, object_id: ObjectID) -> None: ...

    def pin(self, object_id: ObjectID, owner: Address | None) -> None: ...


class _OutOfBand(Protocol):  # borrowing
    def hold_out_of_band(self, ref: ObjectRef) -> None: ...

    def adopt_out_of_band(self, ref: ObjectRef, holder: Address) -> None: ...


class _Objects(Protocol):  # the object manager
    def call_site(self, object_id: ObjectID) -> str: ...

    def object_future(self, ref: ObjectRef) -> concurrent.futures.Future[Any]: ...


class RefWorker(Protocol):
    """What refs use of this process's core worker: its parts that count, lend and read
    objects. Structural, so that this module (near the bottom) imports none of them."""

    @property
    def references(self) -> _Counts: ...

    @property
    def borrowing(self) -> _OutOfBand: ...

    @property
    def objects(self) -> _Objects: ...

    @property
    def address(self) -> Address: ...


# The core worker of this process, bound at connect time. A module global rather than a
# lookup because refs are created and dropped on the hot path. Typed ``Any`` because the
# API reads it back as the ``CoreWorker`` it is (``api.context.current_worker``); this
# module uses only ``RefWorker``'s members of it.
_worker: Any = None


def bind_worker(worker: RefWorker | None) -> None:
    global _worker
    _worker = worker


class ObjectRef:
    """A reference to an object. Hashable, picklable, awaitable; see ``future()``."""

    __slots__ = ("__weakref__", "_counted", "_id", "_owner")
    # ``ObjectRef[np.ndarray]`` in annotations, as Ray's generic ref allows.
    __class_getitem__: Any = classmethod(types.GenericAlias)

    def __init__(
        self, object_id: ObjectID | bytes, owner: Address | None = None, *, _add_ref: bool = True
    ) -> None:
        self._id = object_id if type(object_id) is ObjectID else ObjectID(object_id)
        self._owner = owner
        worker: RefWorker | None = _worker
        self._counted = worker if (_add_ref and worker is not None) else None
        if self._counted is not None:
            self._counted.references.add_local(self._id, owner)

    def __del__(self) -> None:
        counted = self._counted
        if counted is not None:
            try:
                counted.references.drop_local(self._id)
            except Exception:  # interpreter shutdown: nothing left to free
                pass

    # -- identity --------------------------------------------------------------------
    def binary(self) -> bytes:
        return bytes(self._id)

    def hex(self) -> str:
        return self._id.hex()

    def task_id(self) -> TaskID:
        return self._id.task_id()

    def job_id(self) -> JobID:
        return self._id.job_id()

    def is_nil(self) -> bool:
        return self._id.is_nil()

    def owner_address(self) -> Address | None:
        return self._owner

    def call_site(self) -> str:
        """Where the object was created (set MANTA_RECORD_CALLSITES=1 to record it)."""
        worker: RefWorker | None = _worker
        return worker.objects.call_site(self._id) if worker is not None else ""

    @classmethod
    def from_binary(cls, raw: bytes) -> ObjectRef:
        return cls(raw)

    @classmethod
    def nil(cls) -> ObjectRef:
        return cls(ObjectID.nil(), _add_ref=False)

    @classmethod
    def from_random(cls) -> ObjectRef:
        return cls(ObjectID.from_random(), _add_ref=False)

    @property
    def id(self) -> ObjectID:
        return self._id

    def __hash__(self) -> int:
        return hash(self._id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectRef) and other._id == self._id

    def __repr__(self) -> str:
        return f"ObjectRef({self._id.hex()})"

    # -- pickling: the ref goes with its owner address ---------------------------------
    def __reduce__(self) -> Any:
        counted = self._counted
        if serialization.note_contained_ref(self) or counted is None:
            return (_rebuild_ref, (bytes(self._id), self._owner))
        counted.borrowing.hold_out_of_band(self)
        return (_rebuild_out_of_band_ref, (bytes(self._id), self._owner, counted.address))

    def pin_for_life(self) -> None:
        """Keep the object while this process lives (a ref captured by a remote function)."""
        if self._counted is not None:
            self._counted.references.pin(self._id, self._owner)

    def __copy__(self) -> ObjectRef:
        return ObjectRef(self._id, self._owner)

    def __deepcopy__(self, _memo: Any) -> ObjectRef:
        return ObjectRef(self._id, self._owner)

    # -- waiting -----------------------------------------------------------------------
    def future(self) -> concurrent.futures.Future[Any]:
        """A ``concurrent.futures.Future`` that resolves to the value (or its error)."""
        worker = _require_worker()
        return worker.objects.object_future(self)

    def as_future(self) -> asyncio.Future[Any]:
        """An asyncio future for the value, on the running event loop."""
        return asyncio.wrap_future(self.future())

    def __await__(self) -> Generator[Any, None, Any]:
        return self.as_future().__await__()


def _rebuild_ref(raw_id: bytes, owner: Address | None) -> ObjectRef:
    ref = ObjectRef(raw_id, owner)
    serialization.note_loaded_ref(ref)
    return ref


def _rebuild_out_of_band_ref(raw_id: bytes, owner: Address | None, holder: Address) -> ObjectRef:
    ref = ObjectRef(raw_id, owner)
    worker: RefWorker | None = _worker
    if worker is not None:
        worker.borrowing.adopt_out_of_band(ref, holder)
    return ref


def _require_worker() -> RefWorker:
    worker: RefWorker | None = _worker
    if worker is None:
        raise RaySystemError("Manta is not initialized in this process: call manta.init() first")
    return worker
